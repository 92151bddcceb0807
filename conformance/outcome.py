"""How a conformance case ends: passing is returning normally, the rest are exceptions."""

from __future__ import annotations


class CheckFailed(Exception):
    """The runtime did not do what the requirement asks; the message says what was seen."""


class Skipped(Exception):
    """The case cannot be judged on this host (the message says why); not a pass."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_equal(seen: object, wanted: object, what: str) -> None:
    if seen != wanted:
        raise CheckFailed(f"{what}: wanted {wanted!r}, saw {seen!r}")
