"""What a case works with: fresh bundles, the runtime, and cleanup that always runs.

The suite makes itself a child subreaper (see cli.py), so a container's process becomes
our child once `create` has exited; we reap it so that a runtime which judges liveness
with kill(pid, 0) sees it stop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from conformance.bundle import Bundle, copy_rootfs, default_config
from conformance.outcome import CheckFailed
from conformance.runtime import CallResult, Runtime

STOP_TIMEOUT = 10.0


@dataclass
class Context:
    runtime: Runtime
    base_rootfs: Path
    workdir: Path  # private to this case; removed by cleanup()
    new_id: Callable[[], str]
    with_cgroups_path: bool = True
    _containers: list[str] = field(default_factory=list)
    _pids: dict[str, int] = field(default_factory=dict)
    _bundles: dict[str, Bundle] = field(default_factory=dict)
    _host_mounts: list[Path] = field(default_factory=list)
    _bundle_count: int = 0

    # Bundles and containers.

    def bundle(self, script: str | None = None) -> Bundle:
        self._bundle_count += 1
        cid = self.new_id()
        path = self.workdir / f"bundle{self._bundle_count}"
        path.mkdir(mode=0o755)
        copy_rootfs(self.base_rootfs, path / "rootfs")
        bundle = Bundle(path=path, cid=cid, config=default_config(cid, self.with_cgroups_path))
        if script is not None:
            bundle.set_script(script)
        return bundle

    def try_create(self, bundle: Bundle, extra: tuple[str, ...] = (), cid: str | None = None) -> CallResult:
        """create without judging the outcome; the id is cleaned up either way."""
        bundle.write()
        name = cid or bundle.cid
        self._containers.append(name)
        self._bundles[name] = bundle
        result = self.runtime.create(name, bundle.path, bundle.pid_file, bundle.stdout_path,
                                     bundle.stderr_path, extra)
        if result.ok:
            pid = self._read_pid_file(bundle)
            if pid:
                self._pids[name] = pid
        return result

    def track(self, cid: str) -> None:
        """Cleans up `cid` at the end of the case, for ids used outside try_create()."""
        self._containers.append(cid)

    def create(self, bundle: Bundle, extra: tuple[str, ...] = ()) -> int:
        """create that must succeed; returns the container process pid."""
        result = self.try_create(bundle, extra)
        if not result.ok:
            raise CheckFailed(f"create failed: {result.describe()}")
        return self.pid_of(bundle.cid)

    def start(self, cid: str) -> None:
        result = self.runtime.start(cid)
        if not result.ok:
            bundle = self._bundles.get(cid)
            # The container's own stderr often says why it died before start.
            tail = " | ".join(self.errors(bundle).strip().splitlines()[-2:]) if bundle else ""
            raise CheckFailed(f"start failed: {result.describe()}"
                              + (f"; container stderr: {tail}" if tail else ""))

    def pid_of(self, cid: str) -> int:
        if cid in self._pids:
            return self._pids[cid]
        state = self.runtime.state_json(cid)
        pid = state.get("pid") if state else None
        if not isinstance(pid, int) or pid <= 0:
            raise CheckFailed(f"no pid for {cid}: state is {state!r}")
        self._pids[cid] = pid
        return pid

    def status(self, cid: str) -> str | None:
        self._reap(cid)
        state = self.runtime.state_json(cid)
        status = state.get("status") if state else None
        return status if isinstance(status, str) else None

    def wait_status(self, cid: str, wanted: str, timeout: float = STOP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.status(cid)
            if seen == wanted:
                return
            time.sleep(0.02)
        raise CheckFailed(f"container {cid} did not become {wanted} within {timeout:.0f}s "
                          f"(last status {seen!r})")

    def run(self, bundle: Bundle, timeout: float = STOP_TIMEOUT) -> str:
        """create, start, wait for the program to end; returns what it wrote to stdout."""
        self.create(bundle)
        self.start(bundle.cid)
        self.wait_status(bundle.cid, "stopped", timeout)
        return self.output(bundle)

    def run_script(self, bundle: Bundle, script: str) -> str:
        bundle.set_script(script)
        return self.run(bundle)

    def output(self, bundle: Bundle) -> str:
        try:
            return bundle.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def errors(self, bundle: Bundle) -> str:
        try:
            return bundle.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def exists(self, cid: str) -> bool:
        return self.runtime.state(cid).ok

    # Host-side helpers.

    def host_mount(self, *args: str) -> None:
        """`mount ARGS... TARGET` on the host; cleanup() unmounts TARGET."""
        target = Path(args[-1])
        subprocess.run(["mount", *args], check=True, capture_output=True)
        self._host_mounts.append(target)

    def write_executable(self, path: Path, text: str) -> Path:
        path.write_text(text)
        path.chmod(0o755)
        return path

    # Cleanup.

    def cleanup(self) -> list[str]:
        """Removes everything the case made, even after a misbehaving runtime; returns problems."""
        problems: list[str] = []
        for cid in reversed(self._containers):
            if not self.runtime.state(cid).ok:
                self._reap(cid)
                continue
            self.runtime.kill(cid, "KILL")
            result = self.runtime.delete(cid, force=True)
            self._reap(cid)
            if not result.ok:
                problems.append(f"delete --force {cid}: {result.describe()}")
            pid = self._pids.get(cid)
            if pid and _alive(pid):
                _kill_leftover(pid)
                problems.append(f"container {cid} process {pid} survived delete --force; killed")
        for target in reversed(self._host_mounts):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def _reap(self, cid: str) -> None:
        pid = self._pids.get(cid)
        if pid:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def _read_pid_file(self, bundle: Bundle) -> int | None:
        try:
            return int(bundle.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _kill_leftover(pid: int) -> None:
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def ns_inode(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
