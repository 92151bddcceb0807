"""Fixtures shared by the user namespace, rootless, idmap and namespace tests.

These containers run as host uids that cannot enter pytest's 0700 temporary
directories, so everything they touch lives under a world-traversable
/tmp/pyoci-userns-<random> directory, removed afterwards. State roots and container
ids are prefixed `userns-`/`ns-`, cgroups live under /pyoci-e2e/userns-<random>, and the
guard checks only what these tests own: other engineers' tests (podman, containerd)
change the host's mount table at the same time, so mounts under their directories are
left out of the comparison.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyoci.specgen import default_config
from tests.e2e.conftest import CGROUP_PARENT, Runtime, runtime_path

PREFIX = "/tmp/pyoci-userns-"


def is_runc() -> bool:
    return not runtime_path().endswith("pyoci")


def skip_for_runc(reason: str) -> None:
    """Only the reference runtime may skip: pyoci must pass every test."""
    if is_runc():
        pytest.skip(f"runc 1.1.5: {reason}")


def _own_mounts() -> list[str]:
    """Mount table entries, without those other people's concurrent tests make."""
    kept = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if point.startswith("/tmp/") and not point.startswith(PREFIX):
                continue
            if point.startswith(("/run/containerd", "/run/netns", "/var/lib/containers",
                                 "/run/containers", "/run/user")):
                continue
            kept.append(" ".join(fields[3:5]) + " " + line.split(" - ")[1].split()[0])
    return sorted(kept)


def cgroup_dirs(name: str) -> list[str]:
    found = []
    for base in Path("/sys/fs/cgroup").iterdir():
        d = base / CGROUP_PARENT.strip("/") / name
        if d.is_dir():
            found.append(str(d))
    return found


def make_rootfs(root: Path) -> Path:
    """A busybox root filesystem, plus /usr, /lib and /lib64 mount points and links so
    the host's /usr (and its python3) can be bound in when a test needs a real clock call."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "data", "usr", "mnt",
              "shared", "plain", "out"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").symlink_to("usr/lib64")
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet.startswith("usr/"):
            applet = "bin/" + applet.rsplit("/", 1)[1]  # /usr is a mount point here
        link = root / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists() and not link.is_symlink():
            link.symlink_to("/bin/busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.name == "busybox" else 0o644)
    return root


@pytest.fixture(scope="session")
def ns_rootfs() -> Iterator[Path]:
    top = Path(f"{PREFIX}rootfs-{uuid.uuid4().hex[:8]}")
    top.mkdir(mode=0o755)
    top.chmod(0o755)
    try:
        yield make_rootfs(top / "rootfs")
    finally:
        shutil.rmtree(top, ignore_errors=True)


@dataclass
class NsEnv:
    """One test's world: a traversable work directory, a runtime, a cgroup name."""

    work: Path
    runtime: Runtime
    rootfs: Path
    cgroup_name: str

    def config(self, **user_ns: Any) -> dict[str, Any]:
        config = copy.deepcopy(default_config())
        config["root"] = {"path": str(self.rootfs), "readonly": True}
        config["process"]["terminal"] = False
        config["process"]["args"] = ["true"]
        config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{self.cgroup_name}"
        return config

    def bundle(self, config: dict[str, Any], name: str = "bundle") -> Path:
        path = self.work / name
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
        (path / "config.json").write_text(json.dumps(config, indent=1))
        return path

    def host_dir(self, name: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> Path:
        path = self.work / name
        path.mkdir()
        os.chown(path, uid, gid)
        path.chmod(mode)
        return path


def with_user_ns(config: dict[str, Any], host_id: int = 100000, size: int = 65536) -> dict[str, Any]:
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return config


def without_ns(config: dict[str, Any], ns_type: str) -> dict[str, Any]:
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != ns_type]
    return config


def bind(source: Path | str, destination: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["bind", *options]}


def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    time.sleep(0.05)  # let the writer finish its line
    return path.read_text()


@pytest.fixture
def ns_env(ns_rootfs: Path) -> Iterator[NsEnv]:
    hint = uuid.uuid4().hex[:8]
    work = Path(f"{PREFIX}{hint}")
    work.mkdir(mode=0o755)
    work.chmod(0o755)
    runtime = Runtime(runtime_path(), work / "state", work)
    env = NsEnv(work, runtime, ns_rootfs, f"userns-{hint}")
    mounts_before = _own_mounts()
    try:
        yield env
    finally:
        runtime.cleanup()
        leftover = cgroup_dirs(env.cgroup_name)
        for d in leftover:
            subprocess.run(["rmdir", d], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    assert _own_mounts() == mounts_before, "the test changed the host's mount table"
    assert not leftover, f"cgroups left behind: {leftover}"
