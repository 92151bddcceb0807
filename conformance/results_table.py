"""Renders JSON reports side by side as the README's Markdown results table.

    python -m conformance.results_table runc=runc.json crun=crun.json pyoci=pyoci.json
A report may be "NAME=pending" to leave a column for a runtime not run yet.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conformance.cases import MODULES
from conformance.registry import collect

SYMBOL = {"pass": "pass", "fail": "**FAIL**", "skip": "skip"}


def render(columns: list[tuple[str, dict[str, str] | None]]) -> str:
    header = "| test | " + " | ".join(name for name, _ in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [header, rule]
    for case in collect(MODULES):
        cells = []
        for _, outcomes in columns:
            cells.append("pending" if outcomes is None else SYMBOL.get(outcomes.get(case.info.id, ""), "not run"))
        rows.append(f"| `{case.info.id}` | " + " | ".join(cells) + " |")
    totals = []
    for _, outcomes in columns:
        if outcomes is None:
            totals.append("pending")
            continue
        values = list(outcomes.values())
        totals.append(f"{values.count('pass')} pass, {values.count('fail')} fail, {values.count('skip')} skip")
    rows.append("| **total** | " + " | ".join(totals) + " |")
    return "\n".join(rows)


def load(spec: str) -> tuple[str, dict[str, str] | None]:
    name, _, path = spec.partition("=")
    if path == "pending":
        return name, None
    document = json.loads(Path(path).read_text())
    return name, {test["id"]: test["outcome"] for test in document["tests"]}


if __name__ == "__main__":
    print(render([load(arg) for arg in sys.argv[1:]]))
