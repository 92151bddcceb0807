"""Signals, descriptors and dumpable state handed to the program, checked after a real execve."""

from __future__ import annotations

import json
import os
import signal

from hardening_helpers import run_in_child
from pyoci.linux import exec_hygiene


def _status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_python_leaves_sigpipe_ignored_and_reset_clears_it():
    # The control: what a program exec'd straight from Python inherits.
    before = _status(run_in_child(lambda: None, ["/bin/cat", "/proc/self/status"]).stdout)
    assert int(before["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1))

    def block_and_reset():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        exec_hygiene.reset_signals()
    after = _status(run_in_child(block_and_reset, ["/bin/cat", "/proc/self/status"]).stdout)
    assert after["SigIgn"] == "0000000000000000"
    assert after["SigBlk"] == "0000000000000000"


def test_yes_head_ends_after_reset():
    r = run_in_child(exec_hygiene.reset_signals,
                     ["/usr/bin/timeout", "60", "/bin/sh", "-c", "yes | head -1"])
    assert (r.status, r.stdout) == (0, "y\n")


def test_only_stdio_and_preserved_fds_cross_exec():
    def child():
        leaked = [os.open("/", os.O_RDONLY) for _ in range(3)]
        for fd in leaked:
            os.set_inheritable(fd, True)
        preserved = os.open("/dev/null", os.O_RDONLY)  # close-on-exec, as Python opens it
        os.dup2(preserved, 3, inheritable=False)
        exec_hygiene.prepare_exec(preserve_fds=1)
    r = run_in_child(child, ["/bin/sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/3"])
    lines = r.stdout.split()
    assert sorted(int(x) for x in lines[:-1]) == [0, 1, 2, 3]
    assert lines[-1] == "/dev/null"


def test_close_from_closes_now():
    def child():
        fds = [os.open("/", os.O_RDONLY) for _ in range(4)]
        exec_hygiene.close_from(3)
        return [fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")]
    assert json.loads(run_in_child(child).stdout) == []


def test_dumpable_flag():
    def child():
        exec_hygiene.set_dumpable(False)
        off = exec_hygiene.is_dumpable()
        exec_hygiene.set_dumpable(True)
        return [off, exec_hygiene.is_dumpable()]
    assert json.loads(run_in_child(child).stdout) == [False, True]


def test_non_dumpable_process_hides_its_exe_from_others():
    # What protects the runtime's own executable from a container process that is
    # not privileged over it: /proc/<pid>/exe of a non-dumpable process is closed to it.
    read_r, read_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_r)
        os.close(go_w)
        exec_hygiene.set_dumpable(False)
        os.write(read_w, b"x")
        os.read(go_r, 1)
        os._exit(0)
    os.close(read_w)
    os.close(go_r)
    try:
        os.read(read_r, 1)
        probe = run_in_child(lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534)),
                             ["/bin/sh", "-c", f"readlink /proc/{pid}/exe || echo denied"])
        assert "denied" in probe.stdout
    finally:
        os.write(go_w, b"x")
        os.close(go_w)
        os.close(read_r)
        os.waitpid(pid, 0)
