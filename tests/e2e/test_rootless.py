"""Rootless: the runtime run by an ordinary user, with the bundle `spec --rootless` writes.

The tests need a non-root account with subordinate ids. The `test_user` fixture creates
`pyocitest` (a system account without a home or a login shell) and its /etc/subuid and
/etc/subgid ranges (300000-365535) when they are missing, and removes what it added at
the end of the session.
The venv under /work/main must be readable and executable by that user (it is: every
directory on the way is 0755); the test's own files live in a world-traversable
/tmp/pyoci-userns-* directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import json
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.userns_support import NsEnv, ns_env, ns_rootfs, wait_for_file  # noqa: F401

USER = "pyocitest"
SUB_START, SUB_COUNT = 300000, 65536


@dataclass
class RootlessUser:
    name: str
    uid: int
    gid: int


def _has_range(path: str, name: str) -> bool:
    with open(path) as f:
        return any(line.split(":")[0] == name for line in f)


@pytest.fixture(scope="session")
def test_user() -> Iterator[RootlessUser]:
    """The unprivileged user, with subordinate id ranges; what this fixture adds to the
    host's account files it removes again."""
    created_user = False
    added_ranges: list[tuple[str, str]] = []
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        created_user = True
        entry = pwd.getpwnam(USER)
    ranges = f"{SUB_START}-{SUB_START + SUB_COUNT - 1}"
    for path, flag in (("/etc/subuid", "subuids"), ("/etc/subgid", "subgids")):
        if not _has_range(path, USER):
            subprocess.run(["usermod", f"--add-{flag}", ranges, USER], check=True)
            added_ranges.append((flag, ranges))
    try:
        yield RootlessUser(USER, entry.pw_uid, entry.pw_gid)
    finally:
        for flag, value in added_ranges:
            subprocess.run(["usermod", f"--del-{flag}", value, USER], check=False)
        if created_user:
            subprocess.run(["userdel", USER], check=False)


@dataclass
class AsUser:
    """The runtime, run as the test user with its own XDG_RUNTIME_DIR and no --root."""

    binary: str
    user: RootlessUser
    home: Path
    runtime_dir: Path

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home),
               "XDG_RUNTIME_DIR": str(self.runtime_dir)}
        out = self.home / "out.txt"
        with open(out, "w") as o, open(self.home / "err.txt", "w") as e:
            # Output through files: a created container keeps the runtime's stdio.
            done = subprocess.run([self.binary, *args], cwd=cwd, env=env, user=self.user.uid,
                                  group=self.user.gid, extra_groups=[], stdin=subprocess.DEVNULL,
                                  stdout=o, stderr=e, timeout=30)
        return subprocess.CompletedProcess(done.args, done.returncode, out.read_text(),
                                           (self.home / "err.txt").read_text())

    @property
    def state_root(self) -> Path:
        name = "runc" if not self.binary.endswith("pyoci") else "pyoci"
        return self.runtime_dir / name


@pytest.fixture
def as_user(ns_env: NsEnv, test_user: RootlessUser) -> AsUser:
    home = ns_env.work / "home"
    runtime_dir = ns_env.work / "run"
    for d, mode in ((home, 0o755), (runtime_dir, 0o700)):
        d.mkdir()
        os.chown(d, test_user.uid, test_user.gid)
        d.chmod(mode)
    return AsUser(ns_env.runtime.binary, test_user, home, runtime_dir)


def _rootless_bundle(as_user: AsUser, rootfs: Path, args: list[str]) -> Path:
    bundle = as_user.home / "bundle"
    bundle.mkdir()
    os.chown(bundle, as_user.user.uid, as_user.user.gid)
    r = as_user("spec", "--rootless", cwd=bundle)
    assert r.returncode == 0, r.stderr
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    path.write_text(json.dumps(config))
    return bundle


def _user_processes(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except FileNotFoundError:
                continue
    return found


def test_spec_rootless_lifecycle_as_a_user(as_user: AsUser, ns_rootfs: Path) -> None:
    data = as_user.home / "data"
    data.mkdir()
    os.chown(data, as_user.user.uid, as_user.user.gid)
    bundle = _rootless_bundle(as_user, ns_rootfs, ["sh", "-c", "id -u > /data/uid; "
                                                   "cat /proc/self/uid_map > /data/map; "
                                                   "touch /data/made; echo ok > /data/ready; exec sleep 60"])
    config = json.loads((bundle / "config.json").read_text())
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": as_user.user.uid,
                                               "size": 1}]
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                             "options": ["rbind"]})
    (bundle / "config.json").write_text(json.dumps(config))
    before = _user_processes(as_user.user.uid)

    cid = "userns-rootless"
    r = as_user("create", "--bundle", str(bundle), cid)
    assert r.returncode == 0, r.stderr
    try:
        r = as_user("state", cid)
        assert r.returncode == 0, r.stderr
        state = json.loads(r.stdout)
        assert state["status"] == "created"
        assert (as_user.state_root / cid).is_dir()
        assert as_user("start", cid).returncode == 0
        wait_for_file(data / "ready")
        assert (data / "uid").read_text().strip() == "0"
        assert (data / "map").read_text().split() == ["0", str(as_user.user.uid), "1"]
        made = (data / "made").stat()
        assert made.st_uid == as_user.user.uid
        with open(f"/proc/{state['pid']}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(as_user.user.uid)] * 4
        assert json.loads(as_user("state", cid).stdout)["status"] == "running"
        r = as_user("kill", cid, "KILL")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 10
        while json.loads(as_user("state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = as_user("delete", cid)
        assert r.returncode == 0, r.stderr
    finally:
        as_user("delete", "--force", cid)
    assert not (as_user.state_root / cid).exists()
    # A killed init may still be a zombie its new parent (the host's init) has not
    # reaped yet: wait for that, but not forever.
    deadline = time.monotonic() + 10
    while sorted(_user_processes(as_user.user.uid)) != sorted(before):
        assert time.monotonic() < deadline, _user_processes(as_user.user.uid)
        time.sleep(0.05)


def test_rootless_maps_own_id_with_setgroups_denied(as_user: AsUser, ns_rootfs: Path) -> None:
    data = as_user.home / "data"
    data.mkdir()
    os.chown(data, as_user.user.uid, as_user.user.gid)
    bundle = _rootless_bundle(as_user, ns_rootfs, ["sh", "-c", "cat /proc/self/setgroups "
                                                   "/proc/self/gid_map > /data/out"])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                             "options": ["rbind"]})
    (bundle / "config.json").write_text(json.dumps(config))
    r = as_user("run", "--bundle", str(bundle), "userns-rootless-gid")
    assert r.returncode == 0, r.stderr
    assert (data / "out").read_text().split() == ["deny", "0", str(as_user.user.gid), "1"]


def test_rootless_several_ranges_through_newuidmap(as_user: AsUser, ns_rootfs: Path) -> None:
    assert shutil.which("newuidmap") and shutil.which("newgidmap"), "the uidmap package"
    data = as_user.home / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    bundle = _rootless_bundle(as_user, ns_rootfs, ["sh", "-c", "cat /proc/self/uid_map "
                                                   "/proc/self/gid_map > /data/maps; "
                                                   "touch /data/by1000"])
    config = json.loads((bundle / "config.json").read_text())
    user = as_user.user
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                      {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1},
                                      {"containerID": 1, "hostID": SUB_START, "size": SUB_COUNT}]
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                             "options": ["rbind"]})
    (bundle / "config.json").write_text(json.dumps(config))
    r = as_user("run", "--bundle", str(bundle), "userns-rootless-ranges")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in (data / "maps").read_text().splitlines()]
    assert rows == [["0", str(user.uid), "1"], ["1", str(SUB_START), str(SUB_COUNT)],
                    ["0", str(user.gid), "1"], ["1", str(SUB_START), str(SUB_COUNT)]]
    made = (data / "by1000").stat()
    assert (made.st_uid, made.st_gid) == (SUB_START + 999, SUB_START + 999)
