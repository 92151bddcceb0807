"""End-to-end fixtures: real containers, run as root, by any runc-compatible runtime.

RUNTIME=runc (or a path) runs the same tests against another runtime: they assert
the spec's behaviour, not pyoci's. Every test gets its own state root and ids, and
the `host_guard` fixture checks the host is left as it was found: the same mounts,
no container process, no state, no cgroup.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyoci.specgen import default_config

REPO = Path(__file__).resolve().parents[2]
CGROUP_PARENT = "/pyoci-e2e"
TIMEOUT = 30


def runtime_path() -> str:
    name = os.environ.get("RUNTIME", "pyoci")
    if name == "pyoci":
        return str(REPO / ".venv" / "bin" / "pyoci")
    return shutil.which(name) or name


def pytest_report_header(config: pytest.Config) -> str:
    return f"runtime: {runtime_path()}"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem, shared read-only by the tests' bundles."""
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home"):
        (root / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = root / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to("/bin/busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    return root


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Runtime:
    """The runtime under test, with its own state root."""

    binary: str
    root: Path
    tmp: Path
    cgroup_parent: str = CGROUP_PARENT
    made: list[str] = field(default_factory=list)

    @property
    def is_pyoci(self) -> bool:
        return self.binary.endswith("pyoci")

    def __call__(self, *args: str, timeout: float = TIMEOUT, stdin: Any = subprocess.DEVNULL,
                 input: str | None = None, **kwargs: Any) -> Result:
        """Output through files, not pipes: a created container keeps the runtime's
        stdio, and a pipe would stay open (and the caller blocked) until it exits."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            if input is not None:
                stdin = None
                kwargs["input"] = input.encode()
            proc = subprocess.run([self.binary, "--root", str(self.root), *args], stdin=stdin,
                                  stdout=out, stderr=err, timeout=timeout, **kwargs)
            out.seek(0)
            err.seek(0)
            return Result(proc.returncode, out.read(), err.read())

    def new_id(self, prefix: str = "e2e") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.made.append(cid)
        return cid

    def state(self, cid: str) -> dict[str, Any]:
        r = self("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == status or time.monotonic() > deadline:
                assert st["status"] == status, st
                return st
            time.sleep(0.02)

    def run_output(self, bundle: "Bundle", timeout: float = TIMEOUT) -> Result:
        """`run` a container in the foreground, its output captured through files
        (the container inherits the runtime's stdio)."""
        cid = self.new_id()
        out, err = self.tmp / f"{cid}.out", self.tmp / f"{cid}.err"
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.run([self.binary, "--root", str(self.root), "run", "--bundle",
                                   str(bundle.path), cid], stdin=subprocess.DEVNULL, stdout=o,
                                  stderr=e, timeout=timeout)
        return Result(proc.returncode, out.read_text(), err.read_text())

    def cleanup(self) -> None:
        for cid in self.made:
            self("delete", "--force", cid)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Bundle:
    path: Path
    config: dict[str, Any]

    def write(self) -> "Bundle":
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def set_args(self, *args: str) -> "Bundle":
        self.config["process"]["args"] = list(args)
        return self.write()


def base_config(rootfs: Path, cgroups_path: str) -> dict[str, Any]:
    config = copy.deepcopy(default_config())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    config["linux"]["cgroupsPath"] = cgroups_path
    return config


def _mounts(*owned: Path) -> list[str]:
    """The host's mounts, or only those at or under the `owned` paths: other work on
    a shared machine (an engine's storage, say) must not fail this test."""
    prefixes = [str(p) for p in owned]
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if prefixes and not any(point == p or point.startswith(p + "/") for p in prefixes):
                continue
            sep = fields.index("-")
            # Optional fields carry the propagation (shared:N, master:N).
            found.append(" ".join([fields[3], point, fields[sep + 1], *fields[6:sep]]))
    return sorted(found)


def mount_snapshot(*owned: Path) -> list[str]:
    """What a test may not change: the mounts at or under the paths it owns, and the
    root mount with its propagation."""
    return _mounts(*owned) + [m for m in _mounts() if m.split()[1] == "/"]


def _cgroup_dirs(parent: str) -> set[str]:
    """Every directory under `parent` in every hierarchy."""
    found = set()
    for base in Path("/sys/fs/cgroup").iterdir():
        top = base / parent.strip("/")
        if top.is_dir():
            found.update(str(d) for d in top.rglob("*") if d.is_dir())
    return found


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    token = uuid.uuid4().hex[:8]
    rt = Runtime(runtime_path(), Path(f"/tmp/pyoci-e2e-{token}"), tmp_path,
                 cgroup_parent=f"{CGROUP_PARENT}/{token}")
    owned = (tmp_path, tmp_path.parent / "busybox0", rt.root, Path("/run/pyoci"))
    mounts_before = mount_snapshot(*owned)
    try:
        yield rt
    finally:
        rt.cleanup()
    leftover_cgroups = _cgroup_dirs(rt.cgroup_parent)
    for d in sorted(leftover_cgroups, reverse=True):
        _remove_cgroup(Path(d))
    for base in Path("/sys/fs/cgroup").iterdir():
        if (base / rt.cgroup_parent.strip("/")).is_dir():
            _remove_cgroup(base / rt.cgroup_parent.strip("/"))
    assert mount_snapshot(*owned) == mounts_before, "the test changed the host's mount table"
    assert not leftover_cgroups, f"cgroups left behind: {sorted(leftover_cgroups)}"


def _remove_cgroup(d: Path) -> None:
    for pid in (d / "cgroup.procs").read_text().split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        try:
            d.rmdir()
            return
        except OSError:
            time.sleep(0.02)


@pytest.fixture
def bundle(tmp_path: Path, rootfs: Path, runtime: Runtime) -> Bundle:
    """A bundle over the shared read-only rootfs, its cgroup under the test's own parent."""
    path = tmp_path / "bundle"
    path.mkdir()
    return Bundle(path, base_config(rootfs, f"{runtime.cgroup_parent}/{uuid.uuid4().hex[:10]}")).write()


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent() -> Iterator[None]:
    """Each test removes its own /pyoci-e2e/<token>; the shared parent goes once empty
    (another run on this machine may still be using it)."""
    yield
    for base in Path("/sys/fs/cgroup").iterdir():
        try:
            (base / CGROUP_PARENT.strip("/")).rmdir()
        except OSError:
            pass
