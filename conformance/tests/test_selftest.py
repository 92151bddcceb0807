"""The suite must catch a broken runtime, and the same cases must pass against runc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "conformance" / "selftest" / "broken_runtime.py"
RUNC = shutil.which("runc")

# Each breakage, and the case that must notice it.
BREAKAGES = {
    "drop-hostname": "hostname",
    "extra-env": "process.env",
    "never-stopped": "state.status-stopped",
}
FILTER = "^(" + "|".join(case.replace(".", r"\.") for case in BREAKAGES.values()) + ")$"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs real containers as root"),
    pytest.mark.skipif(RUNC is None, reason="runc is the reference runtime of the self-test"),
]


def run_suite(runtime: str, tmp_path: Path, breakage: str = "") -> tuple[int, dict[str, str], str]:
    report = tmp_path / f"report-{breakage or 'runc'}.json"
    env = dict(os.environ, CONFORMANCE_BROKEN=breakage, CONFORMANCE_REAL_RUNTIME=RUNC or "runc")
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "--runtime", runtime, "--filter", FILTER, "--report", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {test["id"]: test["outcome"] for test in json.loads(report.read_text())["tests"]}
    return result.returncode, outcomes, result.stdout


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_runtime_is_caught(breakage: str, tmp_path: Path) -> None:
    returncode, outcomes, tap = run_suite(str(BROKEN), tmp_path, breakage)
    assert outcomes[BREAKAGES[breakage]] == "fail", tap
    assert returncode == 1
    assert "not ok" in tap and tap.rstrip().splitlines()[-1].endswith("failed")


def test_same_cases_pass_against_runc(tmp_path: Path) -> None:
    returncode, outcomes, tap = run_suite(RUNC or "runc", tmp_path)
    assert outcomes == {case: "pass" for case in BREAKAGES.values()}, tap
    assert returncode == 0
    assert tap.rstrip().splitlines()[-1] == f"{len(BREAKAGES)} passed, 0 failed"


def test_unbroken_wrapper_passes(tmp_path: Path) -> None:
    """The wrapper itself is transparent: any failure above comes from the breakage."""
    returncode, outcomes, tap = run_suite(str(BROKEN), tmp_path)
    assert set(outcomes.values()) == {"pass"}, tap
    assert returncode == 0
