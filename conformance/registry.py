"""Conformance cases: a decorator that labels a function, and a collector that finds them.

A case is a plain function taking a Context. The decorator only attaches a CaseInfo to
the function; collect() walks the case modules in definition order, so there is no
process-wide list to mutate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from conformance.context import Context

CaseFunction = Callable[["Context"], None]
_ATTRIBUTE = "__conformance_case__"


@dataclass(frozen=True)
class CaseInfo:
    id: str
    title: str
    section: str  # "file.md#Heading"
    requirement: str  # the statement under test, in this suite's own words


@dataclass(frozen=True)
class Case:
    info: CaseInfo
    run: CaseFunction


def case(id: str, title: str, section: str, requirement: str) -> Callable[[CaseFunction], CaseFunction]:
    info = CaseInfo(id=id, title=title, section=section, requirement=requirement)

    def label(function: CaseFunction) -> CaseFunction:
        setattr(function, _ATTRIBUTE, info)
        return function

    return label


def collect(modules: list[ModuleType], pattern: str | None = None) -> list[Case]:
    """Cases of the modules in order; `pattern` is a regular expression searched in the id."""
    matcher = re.compile(pattern) if pattern else None
    found: list[Case] = []
    seen: set[str] = set()
    for module in modules:
        for value in vars(module).values():
            info = getattr(value, _ATTRIBUTE, None)
            if not isinstance(info, CaseInfo):
                continue
            if info.id in seen:
                raise ValueError(f"duplicate conformance case id {info.id} in {module.__name__}")
            seen.add(info.id)
            if matcher is None or matcher.search(info.id):
                found.append(Case(info=info, run=value))
    return found
