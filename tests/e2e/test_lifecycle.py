"""The OCI lifecycle, seen from outside and inside a real container."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pyoci.validate import schema_errors

from .conftest import Bundle, Runtime


def test_run_shows_the_containers_own_view(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["hostname"] = "inside-e2e"
    bundle.set_args("sh", "-c", "echo pid=$$; hostname; ps -o pid,args; "
                    "echo mounts=$(wc -l < /proc/self/mountinfo); tr '\\0' ' ' < /proc/1/cmdline; echo")
    r = runtime.run_output(bundle)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "pid=1"
    assert lines[1] == "inside-e2e"
    ps_rows = lines[3:lines.index(next(line for line in lines if line.startswith("mounts=")))]
    # Only the container's own processes: the shell (pid 1) and ps itself.
    pids = sorted(int(row.split()[0]) for row in ps_rows)
    assert pids[0] == 1 and len(pids) == 2, ps_rows
    # Its /proc is its own: pid 1 is the shell, not the host's init.
    assert lines[-1].startswith("sh") and "echo pid" in lines[-1]
    mount_count = int(next(line for line in lines if line.startswith("mounts=")).split("=")[1])
    with open("/proc/self/mountinfo") as f:
        assert mount_count < len(f.readlines()) + 20  # a container table, not the host's


def test_create_start_state_delete(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "0.3")
    cid = runtime.new_id()
    pid_file = bundle.path.parent / "init.pid"
    r = runtime("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), cid)
    assert r.returncode == 0, r.stderr

    created = runtime.state(cid)
    assert created["status"] == "created"
    raw_pid = pid_file.read_bytes()
    assert re.fullmatch(rb"[0-9]+", raw_pid), raw_pid
    assert created["pid"] == int(raw_pid) > 0
    assert created["id"] == cid
    assert created["bundle"] == str(bundle.path)
    assert schema_errors(created, "state") == []
    # The init waits in the container: alive, and not yet running the program.
    with open(f"/proc/{created['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()

    assert runtime("start", cid).returncode == 0
    running = runtime.state(cid)
    assert running["status"] == "running"
    assert schema_errors(running, "state") == []

    stopped = runtime.wait_status(cid, "stopped")
    assert schema_errors(stopped, "state") == []
    assert not os.path.exists(f"/proc/{created['pid']}") or _is_zombie(created["pid"])

    r = runtime("delete", cid)
    assert r.returncode == 0, r.stderr
    assert runtime("state", cid).returncode != 0


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_by_name_and_number(runtime: Runtime, bundle: Bundle, sig: str) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle.path), cid).returncode == 0
    assert runtime.state(cid)["status"] == "running"
    r = runtime("kill", cid, sig)
    assert r.returncode == 0, r.stderr
    runtime.wait_status(cid, "stopped")
    assert runtime("delete", cid).returncode == 0


def test_kill_defaults_to_sigterm(runtime: Runtime, bundle: Bundle) -> None:
    # pid 1 only gets the signals it handles: the shell traps TERM and says so.
    marker = bundle.path.parent / "shared"
    marker.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind",
                                    "source": str(marker), "options": ["rbind", "rw"]})
    bundle.set_args("sh", "-c", "trap 'echo got-term > /shared/out; exit 0' TERM; "
                    "touch /shared/ready; while :; do sleep 0.05; done")
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle.path), cid).returncode == 0
    _wait_for(lambda: (marker / "ready").exists())
    assert runtime("kill", cid).returncode == 0
    runtime.wait_status(cid, "stopped")
    assert (marker / "out").read_text() == "got-term\n"


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_run_exit_status_is_the_programs(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sh", "-c", "exit 7")
    assert runtime.run_output(bundle).returncode == 7


def test_run_of_a_killed_program_gives_128_plus_signal(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    proc = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run", "--bundle",
                             str(bundle.path), cid], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: runtime("state", cid).returncode == 0
                  and runtime.state(cid)["status"] == "running")
        assert runtime("kill", cid, "KILL").returncode == 0
        assert proc.wait(timeout=20) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # run deletes what it created once the program is gone.
    assert runtime("state", cid).returncode != 0


def test_run_forwards_signals_to_the_program(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.05; done")
    cid = runtime.new_id()
    proc = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run", "--bundle",
                             str(bundle.path), cid], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: runtime("state", cid).returncode == 0
                  and runtime.state(cid)["status"] == "running")
        time.sleep(0.1)  # let the shell install its trap
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=20) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_list_shows_containers_as_json(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
    r = runtime("list", "--format", "json")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)
    assert [(e["id"], e["status"]) for e in entries] == [(cid, "created")]
    table = runtime("list")
    assert table.stdout.splitlines()[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert cid in table.stdout
    # runc deletes a created container without --force (engines rely on it).
    assert runtime("delete", cid).returncode == 0
    assert runtime("list", "-q").stdout.strip() == ""


def test_delete_of_running_container_needs_force(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    assert runtime("run", "-d", "--bundle", str(bundle.path), cid).returncode == 0
    r = runtime("delete", cid)
    assert r.returncode != 0
    assert "not stopped" in r.stderr
    assert runtime.state(cid)["status"] == "running"
    pid = runtime.state(cid)["pid"]
    assert runtime("delete", "--force", cid).returncode == 0
    assert _is_zombie(pid)
    assert runtime("state", cid).returncode != 0


def test_env_cwd_and_user(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["env"].append("GREETING=hello world")
    bundle.config["process"]["cwd"] = "/tmp"
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [10, 20],
                                        "umask": 0o027}
    bundle.set_args("sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g; id -G; umask')
    r = runtime.run_output(bundle)
    assert r.returncode == 0, r.stderr
    greeting, cwd, uid, gid, groups, umask = r.stdout.splitlines()
    assert greeting == "hello world"
    assert cwd == "/tmp"
    assert (uid, gid) == ("65534", "65534")
    assert sorted(groups.split()) == ["10", "20", "65534"]
    assert umask == "0027"


def test_executable_is_found_in_the_containers_path(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("no-such-program")
    cid = runtime.new_id()
    r = runtime("create", "--bundle", str(bundle.path), cid)
    assert r.returncode != 0
    assert "executable file not found in $PATH" in r.stderr
    assert runtime("state", cid).returncode != 0


def test_200_create_start_delete_cycles_leave_nothing(runtime: Runtime, bundle: Bundle) -> None:
    """Every cycle's cgroup directories, state and processes are gone again: the
    `runtime` fixture checks the cgroup tree and the mount table afterwards."""
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
    bundle.set_args("true")
    for i in range(200):
        cid = f"cycle-{i}"
        assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
        assert runtime("start", cid).returncode == 0
        runtime.wait_status(cid, "stopped")
        r = runtime("delete", cid)
        assert r.returncode == 0, r.stderr
    assert not runtime.root.exists() or os.listdir(runtime.root) == []
    cgroup = bundle.config["linux"]["cgroupsPath"].strip("/")
    assert [d for d in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{d}/{cgroup}")] == []


# Run by test_start_when_the_program_exits_at_once in a process of its own: it becomes a
# child subreaper and reaps the init the moment it exits, as conmon and the containerd
# shim do. `start` runs under strace, which holds each pidfd_open for 0.3 s: a start
# that opens the exec fifo first lets the program run, exit and be reaped meanwhile.
_REAPING_ENGINE = """
import ctypes, json, os, subprocess, sys, threading
runtime, root, bundle, prefix, rounds = sys.argv[1:6]
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
slow_pidfd = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pidfd_open",
              "-e", "inject=pidfd_open:delay_enter=300000"]
failures = []
for i in range(int(rounds)):
    cid = f"{prefix}-{i}"
    pid_file = os.path.join(bundle, f"{cid}.pid")
    base = [runtime, "--root", root]
    with open(os.devnull, "r+") as null:
        created = subprocess.run([*base, "create", "--bundle", bundle, "--pid-file", pid_file, cid],
                                 stdin=null, stdout=null, stderr=null)
        if created.returncode != 0:
            failures.append(f"create {cid}: {created.returncode}")
            continue
        init = int(open(pid_file).read())
        reaper = threading.Thread(target=os.waitpid, args=(init, 0))
        reaper.start()
        started = subprocess.run([*slow_pidfd, *base, "start", cid], stdin=null, stdout=null,
                                 stderr=subprocess.PIPE, text=True)
        if started.returncode != 0:
            failures.append(f"start {cid}: {started.stderr.strip()}")
        reaper.join(10)
        subprocess.run([*base, "delete", "--force", cid], stdin=null, stdout=null, stderr=null)
print(json.dumps(failures))
"""


def test_start_when_the_program_exits_at_once(runtime: Runtime, bundle: Bundle) -> None:
    # The program runs as soon as start opens the exec fifo, and an engine reaps it the
    # moment it exits: start must not look the init up after letting it go.
    bundle.set_args("/bin/true")
    prefix = runtime.new_id("reaped")
    rounds = 3
    runtime.made.extend(f"{prefix}-{i}" for i in range(rounds))
    out = subprocess.run([sys.executable, "-c", _REAPING_ENGINE, runtime.binary, str(runtime.root),
                          str(bundle.path), prefix, str(rounds)],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
