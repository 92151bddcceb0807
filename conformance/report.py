"""Results: TAP version 13 on a stream as cases finish, and a JSON report at the end."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from conformance.registry import CaseInfo

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CaseResult:
    id: str
    title: str
    section: str
    requirement: str
    outcome: str  # PASS, FAIL or SKIP
    detail: str
    duration: float

    @classmethod
    def of(cls, info: CaseInfo, outcome: str, detail: str, duration: float) -> "CaseResult":
        return cls(info.id, info.title, info.section, info.requirement, outcome, detail, round(duration, 3))


class TapWriter:
    def __init__(self, stream: TextIO, planned: int) -> None:
        self._stream = stream
        self._number = 0
        self._print("TAP version 13")
        self._print(f"1..{planned}")

    def comment(self, text: str) -> None:
        for line in text.splitlines():
            self._print(f"# {line}")

    def result(self, result: CaseResult) -> None:
        self._number += 1
        name = f"{result.id} {result.title}"
        if result.outcome == SKIP:
            self._print(f"ok {self._number} - {name} # SKIP {_one_line(result.detail)}")
            return
        status = "ok" if result.outcome == PASS else "not ok"
        self._print(f"{status} {self._number} - {name}")
        if result.outcome == FAIL:
            self._print("  ---")
            self._print(f"  section: {json.dumps(result.section)}")
            self._print(f"  requirement: {json.dumps(result.requirement)}")
            self._print(f"  message: {json.dumps(result.detail)}")
            self._print("  ...")

    def summary(self, results: list[CaseResult]) -> None:
        counts = count(results)
        line = f"{counts[PASS]} passed, {counts[FAIL]} failed"
        if counts[SKIP]:
            line += f", {counts[SKIP]} skipped"
        self._print(line)

    def _print(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def count(results: list[CaseResult]) -> dict[str, int]:
    counts = {PASS: 0, FAIL: 0, SKIP: 0}
    for result in results:
        counts[result.outcome] += 1
    return counts


def write_json(path: Path, runtime: str, results: list[CaseResult]) -> None:
    document = {
        "runtime": runtime,
        "summary": count(results),
        "tests": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())
