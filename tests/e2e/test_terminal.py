"""process.terminal: the console socket protocol, the pty inside the container, and
`run` relaying the pty to the caller's own terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from .conftest import Bundle, Runtime
from .termhelp import ConsoleServer, console_server, own_root, read_all, read_until, terminal_config

__all__ = ["console_server"]


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    own_root(runtime, "tty")
    return runtime


# An engine's shim in miniature: a subreaper that owns the console socket, so the
# detached container's init becomes its child and it reads the exit status itself.
SHIM = r"""
import ctypes, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from tests.e2e.termhelp import ConsoleServer, read_all
from pathlib import Path
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
runtime, root, bundle, cid, workdir = sys.argv[2:7]
server = ConsoleServer(Path(workdir))
pid_file = Path(workdir) / "init.pid"
r = subprocess.run([runtime, "--root", root, "run", "--detach", "--bundle", bundle,
                    "--console-socket", str(server.path), "--pid-file", str(pid_file), cid],
                   stdin=subprocess.DEVNULL)
assert r.returncode == 0, r.returncode
master, _ = server.receive()
os.write(master, b"echo h''i; exit 3\n")
out = read_all(master)
pid = int(pid_file.read_text())
_, status = os.waitpid(pid, 0)
print(repr(out))
print("status", os.waitstatus_to_exitcode(status))
"""


def test_console_socket_shell_exit_status(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    terminal_config(bundle.config, "sh")
    bundle.write()
    cid = rt.new_id("tty")
    repo = str(Path(__file__).resolve().parents[2])
    r = subprocess.run([sys.executable, "-c", SHIM, repo, rt.binary, str(rt.root),
                        str(bundle.path), cid, str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out, status = r.stdout.splitlines()
    # the shell echoes the typed line, then prints the result alone on its line
    assert "\\nhi\\r\\n" in out, out
    assert status == "status 3"


def test_tty_names_a_pty_and_size_matches(rt: Runtime, bundle: Bundle,
                                          console_server: ConsoleServer) -> None:
    terminal_config(bundle.config, "sh", "-c", "tty; stty size; stat -c %t:%T /dev/console; id -u",
                    rows=33, cols=101)
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534}
    bundle.write()
    cid = rt.new_id("tty")
    r = rt("create", "--bundle", str(bundle.path), "--console-socket", str(console_server.path), cid)
    assert r.returncode == 0, r.stderr
    master, name = console_server.receive()
    try:
        assert rt("start", cid).returncode == 0
        out = read_all(master).decode()
    finally:
        os.close(master)
    lines = out.split()
    assert lines[0].startswith("/dev/pts/"), out
    assert lines[1:3] == ["33", "101"], out
    assert lines[3] == "88:" + format(int(lines[0].rsplit("/", 1)[1]), "x"), out  # /dev/console is the pty
    assert lines[4] == "65534", out
    rt.wait_status(cid, "stopped")
    assert rt("delete", cid).returncode == 0


def test_console_socket_with_long_path(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5 fails to dial a console socket path longer than sun_path")
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = ConsoleServer(deep)
    assert len(str(server.path)) > 108
    try:
        terminal_config(bundle.config, "sh", "-c", "echo long-path-ok")
        bundle.write()
        cid = rt.new_id("tty")
        r = rt("create", "--bundle", str(bundle.path), "--console-socket", str(server.path), cid)
        assert r.returncode == 0, r.stderr
        master, _ = server.receive()
        try:
            assert rt("start", cid).returncode == 0
            assert b"long-path-ok" in read_all(master)
        finally:
            os.close(master)
    finally:
        server.close()


def test_terminal_needs_console_socket_for_create(rt: Runtime, bundle: Bundle) -> None:
    terminal_config(bundle.config, "true")
    bundle.write()
    cid = rt.new_id("tty")
    r = rt("create", "--bundle", str(bundle.path), cid)
    assert r.returncode != 0
    assert "console socket" in r.stderr
    assert rt("state", cid).returncode != 0


def test_console_socket_without_terminal_is_refused(rt: Runtime, bundle: Bundle,
                                                   console_server: ConsoleServer) -> None:
    cid = rt.new_id("tty")
    r = rt("create", "--bundle", str(bundle.path), "--console-socket", str(console_server.path), cid)
    assert r.returncode != 0
    assert "console socket" in r.stderr


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _spawn_under_pty(argv: list[str], rows: int, cols: int) -> tuple[subprocess.Popen, int]:
    """The runtime with a fresh pty as its controlling terminal and stdio, like a shell."""
    master, slave = pty.openpty()
    _set_size(slave, rows, cols)

    def become_session_leader() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=become_session_leader)
    os.close(slave)
    return proc, master


def test_run_relays_the_pty_to_the_callers_terminal(rt: Runtime, bundle: Bundle) -> None:
    terminal_config(bundle.config, "sh")
    bundle.write()
    cid = rt.new_id("tty")
    proc, master = _spawn_under_pty([rt.binary, "--root", str(rt.root), "run", "--bundle",
                                     str(bundle.path), cid], 24, 80)
    try:
        os.write(master, b"stty size; echo ans=$((6*7))\n")
        assert b"ans=42" in read_until(master, b"ans=42"), "no answer from the container shell"
        # The window grows; the runtime hears SIGWINCH and resizes the container's pty.
        _set_size(master, 50, 132)
        proc.send_signal(signal.SIGWINCH)
        # The resize is asynchronous to our typing (runc handles it in another
        # goroutine): ask until the new size shows, a few times at most.
        for _ in range(5):
            os.write(master, b"stty size; tty\n")
            out = read_until(master, b"/dev/pts/")
            if b"50 132" in out:
                break
        assert b"50 132" in out, out
        os.write(master, b"exit 7\n")
        read_all(master, timeout=10)
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert rt("state", cid).returncode != 0, "run deletes the container afterwards"


def test_run_restores_the_callers_terminal(rt: Runtime, bundle: Bundle) -> None:
    terminal_config(bundle.config, "true")
    bundle.write()
    cid = rt.new_id("tty")
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    try:
        proc = subprocess.Popen([rt.binary, "--root", str(rt.root), "run", "--bundle",
                                 str(bundle.path), cid], stdin=slave, stdout=slave, stderr=slave)
        read_all_until_exit(master, proc)
        assert proc.returncode == 0
        assert termios.tcgetattr(slave) == before, "terminal left in raw mode"
    finally:
        os.close(master)
        os.close(slave)


def read_all_until_exit(master: int, proc: subprocess.Popen) -> None:
    import select
    while proc.poll() is None:
        if select.select([master], [], [], 0.1)[0]:
            try:
                os.read(master, 4096)
            except OSError:
                pass
    proc.wait(timeout=30)
