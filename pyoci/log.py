"""The runtime's log: `--log FILE` and `--log-format text|json`, as runc writes them.

containerd reads the last "error" entry of a JSON log; podman parses the file as a
single object. So by default only errors are written; warnings and debug lines
only when asked for (--debug), and every JSON line carries an RFC 3339 time.
"""

from __future__ import annotations

import json
import os
import sys
import time

LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def _now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac // 1000:06d}Z"


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.json = fmt == "json"
        self.threshold = LEVELS["debug"] if debug else LEVELS["warning"]
        self.started = time.monotonic()

    def _format(self, level: str, msg: str) -> str:
        if self.json:
            return json.dumps({"level": level, "msg": msg, "time": _now()})
        return f'time="{_now()}" level={level} msg={json.dumps(msg)}'

    def write(self, level: str, msg: str) -> None:
        if LEVELS[level] < self.threshold:
            return
        line = self._format(level, msg) + "\n"
        if self.path:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        elif level != "error":
            # Without a log file, warnings and debug lines go to stderr; errors are
            # printed there by the CLI anyway.
            sys.stderr.write(line)

    @property
    def debugging(self) -> bool:
        return self.threshold == 0

    def debug(self, msg: str) -> None:
        if self.threshold == 0:
            self.write("debug", f"{msg} (+{(time.monotonic() - self.started) * 1000:.1f} ms)")

    def warning(self, msg: str) -> None:
        self.write("warning", msg)

    def error(self, msg: str) -> None:
        self.write("error", msg)
