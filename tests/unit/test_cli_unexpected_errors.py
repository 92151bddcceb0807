"""A bug in a command still ends as one error line, in --log and on stderr: engines
read the runtime's last JSON log entry (containerd) or its stderr (conmon), and a
Python traceback there hides what went wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyoci import cli


def _broken_command(ctx: object, argv: list[str]) -> int:
    raise TypeError("a bug in pyoci")


def test_an_unexpected_exception_is_one_json_log_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(cli.COMMANDS, "state", (_broken_command, "broken"))
    log = tmp_path / "log.json"
    code = cli.main(["--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json",
                     "state", "c1"])
    assert code == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error"
    assert entry["msg"].startswith("internal error: TypeError: a bug in pyoci (at ")
    assert entry["time"].endswith("Z")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyoci: internal error: TypeError")
    assert "Traceback" not in err
