"""`exec`: a second process in a running container, seen from inside and from the host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Bundle, Result, Runtime
from .termhelp import ConsoleServer, console_server, own_root, read_all

__all__ = ["console_server"]


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    own_root(runtime, "tty")
    return runtime


@pytest.fixture
def running(rt: Runtime, bundle: Bundle) -> str:
    """A container whose init sleeps, with its own hostname."""
    bundle.config["hostname"] = "exec-box"
    bundle.config["process"]["env"].append("FROM_CONFIG=yes")
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.set_args("sleep", "300")
    cid = rt.new_id("exec")
    r = rt("run", "--detach", "--bundle", str(bundle.path), cid)
    assert r.returncode == 0, r.stderr
    return cid


def _exec(rt: Runtime, *args: str, **kwargs) -> Result:
    return rt("exec", *args, **kwargs)


def test_exec_sees_the_containers_namespaces_and_cgroup(rt: Runtime, running: str) -> None:
    init_pid = rt.state(running)["pid"]
    r = _exec(rt, running, "sh", "-c",
              "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
              "for n in mnt net uts ipc; do readlink /proc/self/ns/$n; done; "
              "cat /proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] != f"pid={os.getpid()}" and int(lines[0].split("=")[1]) < 100, lines
    assert lines[1] == "exec-box"
    assert lines[2].strip() == "sleep 300", "pid 1 is the container's init"
    for line, ns in zip(lines[3:7], ("mnt", "net", "uts", "ipc")):
        assert line == os.readlink(f"/proc/{init_pid}/ns/{ns}"), ns
    host_cgroup = Path(f"/proc/{init_pid}/cgroup").read_text().splitlines()
    # Same cgroup as the init in every hierarchy (the container sees its own view).
    exec_cgroups = {l.split(":", 2)[1] for l in lines[7:]}
    assert exec_cgroups == {l.split(":", 2)[1] for l in host_cgroup}


def test_exec_runs_in_the_containers_mounts(rt: Runtime, running: str) -> None:
    r = _exec(rt, running, "sh", "-c", "test -x /bin/busybox && ! test -e /work && echo inside")
    assert (r.returncode, r.stdout.strip()) == (0, "inside"), r.stderr


def test_exec_exit_codes_propagate(rt: Runtime, running: str) -> None:
    assert _exec(rt, running, "sh", "-c", "exit 42").returncode == 42
    assert _exec(rt, running, "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    missing = _exec(rt, running, "no-such-program")
    assert missing.returncode == 255
    assert "executable file not found" in missing.stderr


def test_exec_env_cwd_user(rt: Runtime, running: str) -> None:
    r = _exec(rt, "--env", "EXTRA=1", "--env", "FROM_CONFIG=over", "--cwd", "/tmp",
              "--user", "65534:65534", "--additional-gids", "7",
              running, "sh", "-c", "echo $EXTRA $FROM_CONFIG; pwd; id -u; id -g; id -G")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:5] == ["1 over", "/tmp", "65534", "65534", "65534 7"]


def test_exec_process_file(rt: Runtime, running: str, tmp_path: Path) -> None:
    process = {"args": ["sh", "-c", "echo $ONLY; pwd; id -u; exit 5"], "cwd": "/etc",
               "env": ["ONLY=process-file", "PATH=/bin:/sbin"], "user": {"uid": 1, "gid": 1}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    r = _exec(rt, "--process", str(path), running)
    assert r.returncode == 5, r.stderr
    assert r.stdout.split() == ["process-file", "/etc", "1"]


def test_exec_caps_and_no_new_privs(rt: Runtime, running: str) -> None:
    def status_line(r: Result, key: str) -> str:
        return next(l.split(":", 1)[1].strip() for l in r.stdout.splitlines() if l.startswith(key))

    plain = _exec(rt, running, "cat", "/proc/self/status")
    more = _exec(rt, "--cap", "CAP_SYS_ADMIN", "--no-new-privs", running, "cat", "/proc/self/status")
    assert plain.returncode == more.returncode == 0, (plain.stderr, more.stderr)
    cap_sys_admin = 1 << 21
    assert not int(status_line(plain, "CapEff"), 16) & cap_sys_admin
    assert int(status_line(more, "CapEff"), 16) & cap_sys_admin
    assert status_line(plain, "NoNewPrivs") == "0"
    assert status_line(more, "NoNewPrivs") == "1"


def test_exec_detach_pid_file(rt: Runtime, running: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    r = _exec(rt, "--detach", "--pid-file", str(pid_file), running, "sleep", "100")
    assert r.returncode == 0, r.stderr
    pid = int(pid_file.read_text())  # digits only: engines Atoi it
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"100"]
    init_pid = rt.state(running)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init_pid}/ns/pid")
    os.kill(pid, signal.SIGKILL)


def test_exec_tty_through_console_socket(rt: Runtime, running: str,
                                         console_server: ConsoleServer,
                                         tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    r = _exec(rt, "-t", "--detach", "--console-socket", str(console_server.path),
              "--pid-file", str(pid_file), running, "sh", "-c", "tty; exit 0")
    assert r.returncode == 0, r.stderr
    master, _ = console_server.receive()
    try:
        out = read_all(master).decode()
    finally:
        os.close(master)
    assert out.strip().startswith("/dev/pts/"), out


def test_exec_refused_in_stopped_container(rt: Runtime, bundle: Bundle) -> None:
    bundle.set_args("true")
    cid = rt.new_id("exec")
    assert rt("run", "--detach", "--bundle", str(bundle.path), cid).returncode == 0
    rt.wait_status(cid, "stopped")
    r = _exec(rt, cid, "true")
    assert r.returncode != 0
    assert "stopped" in r.stderr


def test_exec_refused_in_paused_container_unless_ignored(rt: Runtime, running: str) -> None:
    assert rt("pause", running).returncode == 0
    try:
        r = _exec(rt, running, "true")
        assert r.returncode != 0
        assert "paused" in r.stderr
        # --ignore-paused lets it in; the process is frozen with the rest until resumed.
        proc = subprocess.Popen([rt.binary, "--root", str(rt.root), "exec", "--ignore-paused",
                                 running, "sh", "-c", "exit 9"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    finally:
        assert rt("resume", running).returncode == 0
    assert proc.wait(timeout=30) == 9


def test_exec_cannot_reach_host_python_exe(rt: Runtime, running: str) -> None:
    """A container process must not open /proc/<pid>/exe of the runtime's exec helper
    (the host's python for pyoci); and it inherits no descriptor but stdio."""
    r = _exec(rt, running, "sh", "-c",
              "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; "
              "for p in /proc/[0-9]*; do test -r $p/exe && cat $p/exe >/dev/null 2>&1 "
              "&& readlink $p/exe; done; true")
    assert r.returncode == 0, r.stderr
    fds = r.stdout.splitlines()[0].split()
    assert fds[:3] == ["0", "1", "2"] and set(fds[3:]) <= {"3", "255"}, fds  # 3: ls's dir
    readable = r.stdout.splitlines()[1:]
    assert not [exe for exe in readable if "python" in exe], readable


def test_exec_preserve_fds(rt: Runtime, running: str, tmp_path: Path) -> None:
    secret = tmp_path / "passed"
    secret.write_text("handed-over\n")
    fd = os.open(secret, os.O_RDONLY)
    try:
        # fd 3 of pytest itself is in use (its output capture): place the file there in
        # the runtime's process only.
        r = rt("exec", "--preserve-fds", "1", running, "cat", "/proc/self/fd/3",
               pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
    finally:
        os.close(fd)
    assert (r.returncode, r.stdout) == (0, "handed-over\n"), r.stderr
