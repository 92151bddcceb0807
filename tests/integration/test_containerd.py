"""containerd's runc v2 shim running tasks with pyoci, driven by `ctr --runc-binary`."""

from __future__ import annotations

import time
from pathlib import Path

from .conftest import CtrTest, run_in_pty
from .engines import CTR_NAMESPACE, run_cmd


def test_run_prints_output_and_returns_the_exit_code(ctr: CtrTest) -> None:
    r = ctr.run("--rm", cmd=("sh", "-c", "echo to-out; echo to-err >&2; exit 3"))
    assert r.returncode == 3, r.stderr
    assert r.stdout == "to-out\n"
    assert "to-err" in r.stderr


def test_failed_create_reports_the_runtime_error(ctr: CtrTest) -> None:
    """The shim reads the last error line of <bundle>/log.json (written with --log-format json)."""
    r = ctr.run("--rm", cmd=("no-such-program",))
    assert r.returncode != 0
    assert "no-such-program" in r.stderr
    assert "executable file not found" in r.stderr
    assert "unable to retrieve OCI runtime error" not in r.stderr


def test_stdin_reaches_the_program(ctr: CtrTest) -> None:
    # ctr does not pass stdin's EOF on to the task: read one line, not to the end.
    r = ctr.run("--rm", cmd=("sh", "-c", 'read line; echo "$line" | tr a-z A-Z'), input="from stdin\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "FROM STDIN\n"


def test_run_with_a_tty(ctr: CtrTest) -> None:
    code, out = ctr.run_in_pty("--rm", "-t", cmd=("sh", "-c", "tty; exit 6"))
    assert code == 6, out
    assert "/dev/pts/0" in out


def test_env_and_cwd(ctr: CtrTest) -> None:
    r = ctr.run("--rm", "--env", "GREETING=hello", "--cwd", "/tmp",
                cmd=("sh", "-c", 'echo "$GREETING"; pwd'))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hello", "/tmp"]


def test_memory_limit_is_set_and_enforced(ctr: CtrTest) -> None:
    # ctr's spec mounts no /sys/fs/cgroup in the container: look from the host.
    name = ctr.new()
    r = ctr.run("-d", "--memory-limit", str(48 * 1024 * 1024), cmd=("sleep", "1000"), name=name)
    assert r.returncode == 0, r.stderr
    limit = Path(f"/sys/fs/cgroup/memory/{CTR_NAMESPACE}/{name}/memory.limit_in_bytes")
    assert limit.read_text().strip() == str(48 * 1024 * 1024)
    assert ctr("tasks", "kill", "--signal", "SIGKILL", name).returncode == 0
    _wait_task_status(ctr, name, "STOPPED")
    assert ctr("tasks", "delete", name).returncode == 0
    assert ctr("containers", "delete", name).returncode == 0

    oom = ctr.run("--rm", "--memory-limit", str(32 * 1024 * 1024),
                  cmd=("dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"))
    assert oom.returncode == 137, oom.stderr


def _wait_task_status(ctr: CtrTest, name: str, status: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line.split() for line in ctr("tasks", "ls").stdout.splitlines()[1:]]
        current = next((cols[2] for cols in lines if cols and cols[0] == name), "absent")
        if current == status:
            return
        assert time.monotonic() < deadline, f"{name}: {current}, wanted {status}"
        time.sleep(0.1)


def test_detached_task_exec_kill_and_delete(ctr: CtrTest) -> None:
    name = ctr.new()
    script = 'trap "exit 9" USR1; touch /tmp/ready; while :; do sleep 0.1; done'
    r = ctr.run("-d", cmd=("sh", "-c", script), name=name)
    assert r.returncode == 0, r.stderr
    _wait_task_status(ctr, name, "RUNNING")

    # (the exec also waits for the trap to be set, before the kill below)
    ex = run_cmd(ctr.exec_argv(name, "e1", "sh", "-c",
                               "until [ -e /tmp/ready ]; do sleep 0.02; done; echo from-exec; exit 4"))
    assert ex.returncode == 4, ex.stderr
    assert ex.stdout == "from-exec\n"

    ps = ctr("tasks", "ps", name)
    assert ps.returncode == 0, ps.stderr

    assert ctr("tasks", "pause", name).returncode == 0
    _wait_task_status(ctr, name, "PAUSED")
    assert ctr("tasks", "resume", name).returncode == 0
    _wait_task_status(ctr, name, "RUNNING")

    kill = ctr("tasks", "kill", "--signal", "SIGUSR1", name)
    assert kill.returncode == 0, kill.stderr
    _wait_task_status(ctr, name, "STOPPED")
    deleted = ctr("tasks", "delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert "exit code 9" in deleted.stderr  # ctr warns about the status of what it deleted
    assert ctr("containers", "delete", name).returncode == 0


def test_exec_with_a_tty(ctr: CtrTest) -> None:
    name = ctr.new()
    assert ctr.run("-d", cmd=("sleep", "1000"), name=name).returncode == 0
    _wait_task_status(ctr, name, "RUNNING")
    code, out = run_in_pty(ctr.exec_argv(name, "t1", "sh", "-c", "tty; exit 3", tty=True), {},
                           timeout=30)
    assert code == 3, out
    assert "/dev/pts/" in out
    assert ctr("tasks", "kill", "--signal", "SIGKILL", name).returncode == 0
    _wait_task_status(ctr, name, "STOPPED")
    assert ctr("tasks", "delete", name).returncode == 0
    assert ctr("containers", "delete", name).returncode == 0


def test_kill_all_signals_every_process(ctr: CtrTest) -> None:
    name = ctr.new()
    r = ctr.run("-d", cmd=("sh", "-c", "sleep 1000 & sleep 1000 & wait"), name=name)
    assert r.returncode == 0, r.stderr
    _wait_task_status(ctr, name, "RUNNING")
    kill = ctr("tasks", "kill", "--all", "--signal", "SIGKILL", name)
    assert kill.returncode == 0, kill.stderr
    _wait_task_status(ctr, name, "STOPPED")
    assert ctr("tasks", "delete", name).returncode == 0
    assert ctr("containers", "delete", name).returncode == 0
