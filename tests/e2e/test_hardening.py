"""The container process's security settings, seen from inside real containers.

Own state root (/tmp/pyoci-hardening-test), ids prefixed `hard-`, cgroups under
/pyoci-hardening. RUNTIME=runc runs the same assertions against runc.
"""

from __future__ import annotations

import array
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TIMEOUT, Result, _remove_cgroup, base_config, mount_snapshot, runtime_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from hardening_helpers import PODMAN_DEFAULT_CAPS, podman_profile_as_oci  # noqa: E402

STATE_ROOT = Path("/tmp/pyoci-hardening-test")
CGROUP_PARENT = "pyoci-hardening"


class Hard:
    """Runs containers with their own state root and `hard-` ids, and cleans up."""

    def __init__(self, tmp: Path, rootfs: Path) -> None:
        self.binary = runtime_path()
        self.tmp = tmp
        self.rootfs = rootfs
        self.made: list[str] = []

    def config(self) -> dict[str, Any]:
        cid = f"hard-{uuid.uuid4().hex[:10]}"
        config = copy.deepcopy(base_config(self.rootfs, cid))
        config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        return config

    def run(self, config: dict[str, Any], *args: str) -> Result:
        if args:
            config["process"]["args"] = list(args)
        cid = config["linux"]["cgroupsPath"].rsplit("/", 1)[1]
        self.made.append(cid)
        bundle = self.tmp / cid
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(config))
        out, err = self.tmp / f"{cid}.out", self.tmp / f"{cid}.err"
        with open(out, "w") as o, open(err, "w") as e:
            proc = subprocess.run([self.binary, "--root", str(STATE_ROOT), "run", "--bundle",
                                   str(bundle), cid], stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                  timeout=TIMEOUT)
        return Result(proc.returncode, out.read_text(), err.read_text())

    def cleanup(self) -> None:
        for cid in self.made:
            subprocess.run([self.binary, "--root", str(STATE_ROOT), "delete", "--force", cid],
                           capture_output=True, timeout=TIMEOUT)
        for base in Path("/sys/fs/cgroup").iterdir():
            parent = base / CGROUP_PARENT
            if parent.is_dir():
                for d in sorted(parent.rglob("*"), reverse=True):
                    if d.is_dir():
                        _remove_cgroup(d)
                _remove_cgroup(parent)
        shutil.rmtree(STATE_ROOT, ignore_errors=True)


@pytest.fixture
def hard(tmp_path: Path, rootfs: Path) -> Iterator[Hard]:
    h = Hard(tmp_path, rootfs)
    owned = (tmp_path, rootfs.parent, STATE_ROOT)
    mounts_before = mount_snapshot(*owned)
    try:
        yield h
    finally:
        h.cleanup()
    assert mount_snapshot(*owned) == mounts_before, "the test changed the host's mount table"


def _caps(text: str) -> dict[str, int]:
    return {k: int(v, 16) for k, _, v in (line.partition(":\t") for line in text.splitlines())
            if k.startswith("Cap")}


def test_capabilities_of_root_with_no_new_privs(hard: Hard) -> None:
    config = hard.config()
    config["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"], "permitted": ["CAP_KILL"]}
    r = hard.run(config, "sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert _caps(r.stdout) == {"CapInh": 0, "CapPrm": 0x20, "CapEff": 0x20, "CapBnd": 0x421, "CapAmb": 0}
    assert "NoNewPrivs:\t1" in r.stdout


def test_capabilities_of_a_non_root_user_with_ambient(hard: Hard) -> None:
    config = hard.config()
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_KILL"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"], "ambient": ["CAP_NET_BIND_SERVICE"]}
    r = hard.run(config, "grep", "Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert _caps(r.stdout) == {"CapInh": 0x401, "CapPrm": 0x400, "CapEff": 0x400,
                               "CapBnd": 0x421, "CapAmb": 0x400}


def test_runtime_default_capabilities_for_root_and_non_root(hard: Hard) -> None:
    config = hard.config()
    r = hard.run(config, "grep", "Cap", "/proc/self/status")
    assert _caps(r.stdout)["CapEff"] == 0x20000420, r.stderr
    config = hard.config()
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = hard.run(config, "grep", "Cap", "/proc/self/status")
    assert _caps(r.stdout) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0x20000420, "CapAmb": 0}


def test_setuid_binary_gains_nothing_with_no_new_privs(hard: Hard, tmp_path: Path) -> None:
    # A setuid-root copy of busybox in a private rootfs: with no_new_privs, uid stays 1000.
    root = tmp_path / "suid-rootfs"
    shutil.copytree(hard.rootfs, root, symlinks=True)
    (root / "bin" / "busybox-suid").write_bytes((root / "bin" / "busybox").read_bytes())
    os.chmod(root / "bin" / "busybox-suid", 0o4755)
    config = hard.config()
    config["root"]["path"] = str(root)
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = hard.run(config, "/bin/busybox-suid", "id", "-u")
    assert (r.returncode, r.stdout.strip()) == (0, "1000"), r.stderr


def test_process_attributes(hard: Hard) -> None:
    config = hard.config()
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    config["process"]["oomScoreAdj"] = 321
    config["process"]["user"]["umask"] = 0o027
    config["linux"]["sysctl"] = {"kernel.msgmax": "4242", "kernel.domainname": "hard.example"}
    r = hard.run(config, "sh", "-c", "grep -E 'open files|core file' /proc/self/limits; "
                 "cat /proc/self/oom_score_adj; umask; cat /proc/sys/kernel/msgmax; "
                 "cat /proc/sys/kernel/domainname")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[4:6] == ["0", "4096"]       # Max core file size
    assert lines[1].split()[3:5] == ["512", "768"]      # Max open files
    assert lines[2:] == ["321", "0027", "4242", "hard.example"]


@pytest.mark.xfail(not runtime_path().endswith("pyoci"),
                   reason="runc 1.1 predates linux.personality and ignores it")
def test_personality(hard: Hard) -> None:
    config = hard.config()
    config["linux"]["personality"] = {"domain": "LINUX32"}
    r = hard.run(config, "uname", "-m")
    assert (r.returncode, r.stdout) == (0, "i686\n"), r.stderr


def test_seccomp_errno_and_argument_condition(hard: Hard) -> None:
    config = hard.config()
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
                     {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    r = hard.run(config, "sh", "-c", "mkdir /tmp/x; echo mkdir=$?; linux64 true; echo linux64=$?; "
                 "linux32 true; echo linux32=$?")
    assert "Read-only file system" in r.stderr
    assert r.stdout.split() == ["mkdir=1", "linux64=0", "linux32=1"]


def test_podman_default_profile_runs_a_shell(hard: Hard) -> None:
    config = hard.config()
    config["linux"]["seccomp"] = podman_profile_as_oci(PODMAN_DEFAULT_CAPS)
    config["process"]["capabilities"] = {k: sorted(PODMAN_DEFAULT_CAPS)
                                         for k in ("bounding", "effective", "permitted")}
    r = hard.run(config, "sh", "-c", "echo hi | tr a-z A-Z; ls /proc/self/ >/dev/null && echo ok")
    assert (r.returncode, r.stdout) == (0, "HI\nok\n"), r.stderr


def test_seccomp_notify_reaches_the_listener(hard: Hard, tmp_path: Path) -> None:
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(TIMEOUT)
    got: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            fds = array.array("i")
            data = b""
            while True:
                msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
                for _level, _kind, payload in anc:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                if not msg:
                    break
                data += msg
        got["message"] = json.loads(data)
        got["links"] = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
        for fd in fds:
            os.close(fd)
    thread = threading.Thread(target=serve)
    thread.start()
    config = hard.config()
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                                  "listenerMetadata": "hard-meta",
                                  "syscalls": [{"names": ["uselib"], "action": "SCMP_ACT_NOTIFY"}]}
    try:
        r = hard.run(config, "echo", "done")
        thread.join(TIMEOUT)
    finally:
        server.close()
    assert (r.returncode, r.stdout) == (0, "done\n"), r.stderr
    message = got["message"]
    assert message["fds"] == ["seccompFd"] and message["metadata"] == "hard-meta"
    assert message["state"]["id"] == config["linux"]["cgroupsPath"].rsplit("/", 1)[1]
    assert message["pid"] > 1 and message["state"]["pid"] == message["pid"]
    assert got["links"] == ["anon_inode:seccomp notify"]


def test_apparmor_and_selinux_on_a_host_without_them_fail_like_runc(hard: Hard) -> None:
    config = hard.config()
    config["process"]["apparmorProfile"] = "hard-profile"
    r = hard.run(config, "true")
    assert r.returncode != 0 and "apparmor" in r.stderr
    config = hard.config()
    config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    r = hard.run(config, "true")
    assert r.returncode != 0
    assert "selinux label is specified in config, but selinux is disabled or not supported" in r.stderr


def test_only_stdio_reaches_the_program_and_cwd_is_inside(hard: Hard) -> None:
    config = hard.config()
    config["process"]["cwd"] = "/tmp"
    r = hard.run(config, "sh", "-c", "ls /proc/$$/fd; echo cwd=$(readlink /proc/$$/cwd); "
                 "cd ..; ls -d /proc/$$/cwd/../../../etc/passwd")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["0", "1", "2"] and lines[3] == "cwd=/tmp"
    # The container's own /etc: the host's is out of reach of relative walks.
    assert lines[4] == "/proc/1/cwd/../../../etc/passwd" or lines[4].endswith("/etc/passwd")


def test_yes_head_ends(hard: Hard) -> None:
    config = hard.config()
    r = hard.run(config, "timeout", "20", "sh", "-c", "yes | head -1; echo end")
    assert (r.returncode, r.stdout) == (0, "y\nend\n"), r.stderr


def test_no_runtime_executable_is_reachable_from_inside(hard: Hard) -> None:
    # CVE-2019-5736 class: the program must not reach the host's runtime (python or
    # runc) binary through /proc/<pid>/exe of a runtime process.
    config = hard.config()
    config["process"]["capabilities"] = {k: ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_KILL"]
                                         for k in ("bounding", "effective", "permitted")}
    r = hard.run(config, "sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done; "
                 "echo x 2>/dev/null >> /proc/self/exe && echo wrote || echo refused")
    assert r.returncode == 0, r.stderr
    exes = set(r.stdout.split()[:-1])
    assert exes <= {"/bin/busybox"}, exes
    assert r.stdout.split()[-1] == "refused"
