"""features, spec, --log/--log-format json/--debug, and process details: --preserve-fds,
LISTEN_FDS, NOTIFY_SOCKET, --no-pivot, the session keyring."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from pyoci.validate import schema_errors

from .conftest import Bundle, Runtime
from .termhelp import own_root


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    own_root(runtime, "tty")
    return runtime


def test_features_validates_and_is_truthful(rt: Runtime) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5's `features` is experimental and differs from features.md")
    r = rt("features")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert schema_errors(doc, "features") == []
    assert doc["ociVersionMin"] and doc["ociVersionMax"] == "1.3.0"
    linux = doc["linux"]
    assert {"pid", "network", "mount", "user", "cgroup"} <= set(linux["namespaces"])
    assert "CAP_SYS_ADMIN" in linux["capabilities"]
    assert {"rro", "rbind", "nosuid"} <= set(doc["mountOptions"])
    assert linux["cgroup"]["v1"] and linux["cgroup"]["v2"] and not linux["cgroup"]["systemd"]
    assert "SCMP_ACT_ERRNO" in linux["seccomp"]["actions"]
    assert "SCMP_ARCH_X86_64" in linux["seccomp"]["archs"]
    assert set(linux["seccomp"]["supportedFlags"]) <= set(linux["seccomp"]["knownFlags"])
    assert linux["apparmor"]["enabled"] == Path("/sys/kernel/security/apparmor").exists()
    assert doc["annotations"]["io.github.pyoci.version"]


def test_spec_output_validates_and_runs(rt: Runtime, tmp_path: Path, rootfs: Path) -> None:
    bundle = tmp_path / "specbundle"
    bundle.mkdir()
    assert rt("spec", "--bundle", str(bundle)).returncode == 0
    (bundle / "rootfs").mkdir()
    config = json.loads((bundle / "config.json").read_text())
    if rt.is_pyoci:
        r = rt("validate", "--bundle", str(bundle))
        assert r.returncode == 0, r.stderr
    config["root"]["path"] = str(rootfs)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "exit 6"]
    config["linux"]["cgroupsPath"] = f"{rt.cgroup_parent}/spec-run"
    (bundle / "config.json").write_text(json.dumps(config))
    cid = rt.new_id("tty")
    r = rt("run", "--bundle", str(bundle), cid)
    assert r.returncode == 6, r.stderr


def test_json_log_lines_parse(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    cid = rt.new_id("tty")
    bundle.set_args("true")
    r = rt("--log", str(log), "--log-format", "json", "--debug", "run", "--bundle",
           str(bundle.path), cid)
    assert r.returncode == 0, r.stderr
    bad = rt("--log", str(log), "--log-format", "json", "start", "no-such-" + cid)
    assert bad.returncode != 0
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all({"level", "msg", "time"} <= set(e) for e in entries)
    assert entries[-1]["level"] == "error" and "does not exist" in entries[-1]["msg"]
    if rt.is_pyoci:
        debug = " | ".join(e["msg"] for e in entries if e["level"] == "debug")
        for step in ("namespaces:", "mount proc", "pivot_root", "init ready"):
            assert step in debug, step


def test_no_debug_no_log_lines(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    bundle.set_args("true")
    r = rt("--log", str(log), "--log-format", "json", "run", "--bundle", str(bundle.path),
           rt.new_id("tty"))
    assert r.returncode == 0
    assert not log.exists() or log.read_text() == ""


def test_no_pivot(rt: Runtime, bundle: Bundle) -> None:
    bundle.config["root"]["readonly"] = False
    bundle.set_args("sh", "-c", "test -x /bin/busybox && grep -c ' / ' /proc/self/mountinfo")
    out = rt.tmp / "nopivot.out"
    cid = rt.new_id("tty")
    with open(out, "w") as f:
        r = subprocess.run([rt.binary, "--root", str(rt.root), "run", "--no-pivot", "--bundle",
                            str(bundle.path), cid], stdout=f, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert int(out.read_text()) >= 1


@pytest.mark.parametrize("new_keyring", [True, False])
def test_session_keyring(rt: Runtime, bundle: Bundle, new_keyring: bool) -> None:
    bundle.set_args("cat", "/proc/keys")
    # /proc/keys is masked by default
    bundle.config["linux"]["maskedPaths"].remove("/proc/keys")
    bundle.write()
    cid = rt.new_id("tty")
    args = ["run"] + ([] if new_keyring else ["--no-new-keyring"])
    out = rt.tmp / "keys.out"
    with open(out, "w") as f:
        r = subprocess.run([rt.binary, "--root", str(rt.root), *args, "--bundle",
                            str(bundle.path), cid], stdout=f, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (f"_ses.{cid}" in out.read_text()) == new_keyring, out.read_text()


def test_preserve_fds_and_listen_fds(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("listen\n")
    b.write_text("preserved\n")
    bundle.set_args("sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat /proc/self/fd/3 /proc/self/fd/4; "
                    "test -e /proc/self/fd/5 && echo leaked; true")
    out = rt.tmp / "fds.out"
    cid = rt.new_id("tty")
    script = ("import os, sys\n"
              f"fa, fb = os.open({str(a)!r}, os.O_RDONLY), os.open({str(b)!r}, os.O_RDONLY)\n"
              "os.dup2(fa, 10); os.dup2(fb, 11); os.dup2(10, 3); os.dup2(11, 4)\n"
              "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
              "os.execv(sys.argv[1], sys.argv[1:])\n")
    with open(out, "w") as f:
        r = subprocess.run(["/usr/bin/env", "python3", "-c", script, rt.binary, "--root",
                            str(rt.root), "run", "--preserve-fds", "1", "--bundle",
                            str(bundle.path), cid], stdout=f, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert out.read_text().split("\n")[:3] == ["1 1", "listen", "preserved"], out.read_text()


def test_notify_socket_reaches_the_callers_listener(rt: Runtime, bundle: Bundle,
                                                    tmp_path: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc proxies NOTIFY_SOCKET through its own socket during `start`")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    listener.bind(str(path))
    listener.settimeout(20)
    bundle.set_args("sh", "-c", "echo READY=1 | nc -u -U -w1 $NOTIFY_SOCKET 2>/dev/null "
                    "|| printf READY=1 | socat - UNIX-SENDTO:$NOTIFY_SOCKET 2>/dev/null; "
                    "echo $NOTIFY_SOCKET")
    out = rt.tmp / "notify.out"
    cid = rt.new_id("tty")
    try:
        with open(out, "w") as f:
            r = subprocess.run([rt.binary, "--root", str(rt.root), "run", "--bundle",
                                str(bundle.path), cid], stdout=f, stderr=subprocess.PIPE,
                               env={**os.environ, "NOTIFY_SOCKET": str(path)}, timeout=30)
        assert r.returncode == 0, r.stderr
        assert out.read_text().strip().endswith("/run/notify/notify.sock")
    finally:
        listener.close()
