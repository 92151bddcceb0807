"""The conformance suite against pyoci and against Debian's runc, in one run: pyoci
must pass every case runc passes on this host. (Cases pyoci passes and runc fails
are listed with their reasons in conformance/README.md.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _run_suite(runtime: str, report: Path) -> dict[str, dict]:
    proc = subprocess.run([sys.executable, "-m", "conformance", "--runtime", runtime,
                           "--report", str(report)], cwd=REPO, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)
    assert report.exists(), proc.stdout[-3000:]
    data = json.loads(report.read_text())
    cases = data["tests"]
    return {case["id"]: case for case in cases}


def test_pyoci_passes_everything_runc_passes(tmp_path: Path) -> None:
    runc = shutil.which("runc")
    assert runc, "runc is installed by tools/setup.sh"
    reference = _run_suite(runc, tmp_path / "runc.json")
    ours = _run_suite(str(REPO / ".venv" / "bin" / "pyoci"), tmp_path / "pyoci.json")
    assert set(ours) == set(reference)
    regressions = {cid: ours[cid]["detail"] for cid, case in reference.items()
                   if case["outcome"] == "pass" and ours[cid]["outcome"] != "pass"}
    assert not regressions, "\n".join(f"{cid}: {detail}" for cid, detail in sorted(regressions.items()))
