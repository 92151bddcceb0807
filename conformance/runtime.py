"""Driving the runtime under test through its runc-compatible command line.

Every call has a timeout and captures stdio in files, never pipes: a container started
by `create` inherits the runtime's stdio, so a pipe would stay open as long as the
container lives and a reader would hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class CallResult:
    argv: list[str]
    returncode: int  # -1 when the call was killed for taking too long
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        command = " ".join(self.argv[-3:])
        if self.timed_out:
            return f"`{command}` timed out"
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
        return f"`{command}` exited {self.returncode}: " + " | ".join(tail)


@dataclass(frozen=True)
class Runtime:
    path: str
    root: str
    global_args: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *self.global_args, *args]

    def call(
        self,
        *args: str,
        stdout_path: Path | None = None,
        stderr_path: Path | None = None,
        timeout: float | None = None,
    ) -> CallResult:
        """Runs one operation. With stdout_path/stderr_path the runtime's (and so a created
        container's) stdio go to those files; otherwise to private temporary files."""
        argv = self.argv(*args)
        limit = self.timeout if timeout is None else timeout
        with tempfile.TemporaryFile() as out_tmp, tempfile.TemporaryFile() as err_tmp:
            out = open(stdout_path, "ab") if stdout_path else out_tmp
            err = open(stderr_path, "ab") if stderr_path else err_tmp
            try:
                env = dict(os.environ, **self.env)
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, close_fds=True
                )
                timed_out = False
                try:
                    returncode = process.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    process.kill()
                    returncode = process.wait()
            finally:
                if stdout_path:
                    out.close()
                if stderr_path:
                    err.close()
            stdout = _read_back(stdout_path, out_tmp)
            stderr = _read_back(stderr_path, err_tmp)
        return CallResult(argv, -1 if timed_out else returncode, stdout, stderr, timed_out)

    # The spec's operations, spelled the runc way.

    def create(self, cid: str, bundle: Path, pid_file: Path, stdout_path: Path, stderr_path: Path,
               extra: tuple[str, ...] = ()) -> CallResult:
        return self.call("create", "--bundle", str(bundle), "--pid-file", str(pid_file), *extra, cid,
                         stdout_path=stdout_path, stderr_path=stderr_path)

    def start(self, cid: str) -> CallResult:
        return self.call("start", cid)

    def state(self, cid: str) -> CallResult:
        return self.call("state", cid)

    def kill(self, cid: str, signal: str) -> CallResult:
        return self.call("kill", cid, signal)

    def delete(self, cid: str, force: bool = False) -> CallResult:
        return self.call("delete", *(["--force"] if force else []), cid)

    def features(self) -> CallResult:
        return self.call("features")

    def state_json(self, cid: str) -> dict[str, object] | None:
        """The parsed state, or None when the runtime reports an error or prints no JSON object."""
        result = self.state(cid)
        if not result.ok:
            return None
        try:
            value = json.loads(result.stdout)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def _read_back(path: Path | None, tmp: IO[bytes]) -> str:
    if path is not None:
        try:
            return path.read_bytes().decode(errors="replace")
        except OSError:
            return ""
    tmp.seek(0)
    return tmp.read().decode(errors="replace")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
