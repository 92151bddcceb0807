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


def base_config(rootfs: Path, cid_hint: str) -> dict[str, Any]:
    config = copy.deepcopy(default_config())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cid_hint}"
    return config


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[3:5]) + " " + line.split(" - ")[1].split()[0]
                      for line in f)


def _cgroup_dirs() -> set[str]:
    found = set()
    for base in Path("/sys/fs/cgroup").iterdir():
        if (base / CGROUP_PARENT.strip("/")).is_dir():
            for d in (base / CGROUP_PARENT.strip("/")).iterdir():
                if d.is_dir():
                    found.add(str(d))
    return found


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(runtime_path(), Path(f"/tmp/pyoci-e2e-{uuid.uuid4().hex[:8]}"), tmp_path)
    mounts_before = _mounts()
    try:
        yield rt
    finally:
        rt.cleanup()
    leftover_cgroups = _cgroup_dirs()
    for d in leftover_cgroups:
        _remove_cgroup(Path(d))
    assert _mounts() == mounts_before, "the test changed the host's mount table"
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
def bundle(tmp_path: Path, rootfs: Path) -> Bundle:
    path = tmp_path / "bundle"
    path.mkdir()
    return Bundle(path, base_config(rootfs, uuid.uuid4().hex[:10])).write()


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent() -> Iterator[None]:
    """The runtime makes /pyoci-e2e in each hierarchy as the parent of the tests'
    cgroups; it is the tests' to remove at the end."""
    yield
    for base in Path("/sys/fs/cgroup").iterdir():
        parent = base / CGROUP_PARENT.strip("/")
        if parent.is_dir():
            for d in sorted(parent.rglob("*"), reverse=True):
                if d.is_dir():
                    _remove_cgroup(d)
            _remove_cgroup(parent)
