"""podman (through conmon) running its containers with pyoci as the OCI runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .conftest import PodmanTest
from .engines import IMAGE, ULIMITS, runtime_name


def test_run_prints_output_and_returns_the_exit_code(podman: PodmanTest) -> None:
    r = podman.run("--rm", IMAGE, "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "to-out\n"
    assert "to-err" in r.stderr


def test_missing_and_unexecutable_programs_map_to_127_and_126(podman: PodmanTest) -> None:
    missing = podman.run("--rm", IMAGE, "no-such-program")
    assert missing.returncode == 127, missing.stderr
    assert "no-such-program" in missing.stderr
    not_executable = podman.run("--rm", IMAGE, "/etc/passwd")
    assert not_executable.returncode == 126, not_executable.stderr
    assert "permission denied" in not_executable.stderr.lower()


def test_interactive_stdin_reaches_the_program(podman: PodmanTest) -> None:
    r = podman.run("--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z; echo done", input="hello pyoci\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "HELLO PYOCI\ndone\n"


def test_run_under_a_terminal_gets_a_pty(podman: PodmanTest) -> None:
    name = podman.new()
    code, out = podman.run_in_pty("run", "--rm", "-t", "--name", name, *podman.podman.run_flags(),
                                  IMAGE, "sh", "-c", "tty; stty size; exit 4")
    assert code == 4, out
    assert "/dev/pts/0" in out
    assert "not a tty" not in out


def test_exec_into_a_detached_container(podman: PodmanTest) -> None:
    name = podman.new()
    started = podman.run("-d", IMAGE, "sleep", "1000", name=name)
    assert started.returncode == 0, started.stderr
    assert _pid1_cmdline(podman, name) == ["sleep", "1000"]
    r = podman("exec", name, "sh", "-c", "echo from-exec; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout == "from-exec\n"
    env = podman("exec", "-e", "EXTRA=1", "-w", "/tmp", name, "sh", "-c", 'echo "$EXTRA $(pwd)"')
    assert env.stdout == "1 /tmp\n", env.stderr
    assert podman("exec", name, "no-such-program").returncode == 127
    tty = podman("exec", "-t", name, "tty")
    assert tty.returncode == 0, tty.stderr
    assert tty.out.startswith("/dev/pts/"), tty.stdout


def _pid1_cmdline(podman: PodmanTest, name: str) -> list[str]:
    """PID 1's argv seen through `podman exec`, once its execve is done (`run -d`
    returns when the program was released, not when it finished exec'ing)."""
    deadline = time.monotonic() + 10
    while True:
        r = podman("exec", name, "cat", "/proc/1/cmdline")
        assert r.returncode == 0, r.stderr
        if r.stdout or time.monotonic() > deadline:
            return r.stdout.rstrip("\0").split("\0")
        time.sleep(0.05)


def test_pause_and_unpause_freeze_the_container(podman: PodmanTest) -> None:
    name = podman.new()
    ticker = "i=0; while :; do i=$((i+1)); echo $i >/tmp/tick; sleep 0.05; done"
    assert podman.run("-d", IMAGE, "sh", "-c", ticker, name=name).returncode == 0
    cid = podman.cid(name)
    assert podman("pause", name).returncode == 0
    podman.wait_status(name, "paused")
    freezer = f"/sys/fs/cgroup/freezer/pyoci-it-podman/libpod-{cid}/freezer.state"
    with open(freezer) as f:
        assert f.read().strip() == "FROZEN"
    r = podman("unpause", name)
    assert r.returncode == 0, r.stderr
    podman.wait_status(name, "running")
    first = podman("exec", name, "cat", "/tmp/tick").out
    time.sleep(0.3)
    assert podman("exec", name, "cat", "/tmp/tick").out != first


def test_stop_escalates_to_sigkill(podman: PodmanTest) -> None:
    name = podman.new()
    # sleep as PID 1 of its namespace has no handler for SIGTERM, so it ignores it.
    assert podman.run("-d", IMAGE, "sleep", "1000", name=name).returncode == 0
    r = podman("stop", "--time", "1", name)
    assert r.returncode == 0, r.stderr
    assert podman.inspect(name, "{{.State.Status}}") == "exited"
    assert podman.inspect(name, "{{.State.ExitCode}}") == "137"
    assert podman("rm", name).returncode == 0


def test_kill_delivers_a_signal_the_program_handles(podman: PodmanTest) -> None:
    name = podman.new()
    script = 'trap "echo got-usr1; exit 7" USR1; echo ready; while :; do sleep 0.1; done'
    assert podman.run("-d", IMAGE, "sh", "-c", script, name=name).returncode == 0
    deadline = time.monotonic() + 10
    while "ready" not in podman("logs", name).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    r = podman("kill", "--signal", "USR1", name)
    assert r.returncode == 0, r.stderr
    assert podman("wait", name).out == "7"
    assert "got-usr1" in podman("logs", name).stdout
    assert podman("rm", name).returncode == 0


def test_rm_force_removes_a_running_container(podman: PodmanTest) -> None:
    name = podman.new()
    assert podman.run("-d", IMAGE, "sleep", "1000", name=name).returncode == 0
    r = podman("rm", "--force", "--time", "0", name)
    assert r.returncode == 0, r.stderr
    assert name not in podman.podman.names()


def test_memory_limit_is_visible_and_enforced(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--memory", "64m", IMAGE,
                   "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.returncode == 0, r.stderr
    assert r.out == str(64 * 1024 * 1024)
    name = podman.new()
    # dd's 64 MiB buffer cannot fit in 32 MiB without swap: the OOM killer ends it.
    oom = podman.run("--memory", "32m", "--memory-swap", "32m", IMAGE,
                     "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", name=name)
    assert oom.returncode == 137, oom.stderr
    # (conmon 2.1.6 on cgroup v1 does not report State.OOMKilled, with runc either.)
    assert podman("rm", name).returncode == 0


def test_pids_limit_stops_forks(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--pids-limit", "8", IMAGE, "sh", "-c",
                   "cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 12); do sleep 5 & done 2>&1")
    # sh gives up (status 2) at the first fork the pids controller refuses.
    assert r.returncode == 2, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "8"
    assert "can't fork" in r.stdout + r.stderr


def test_read_only_rootfs(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--read-only", IMAGE, "sh", "-c",
                   "touch /in-root 2>&1; touch /tmp/in-tmp && echo tmp-writable")
    assert r.returncode == 0, r.stderr
    assert "Read-only file system" in r.stdout
    assert "tmp-writable" in r.stdout


def test_env_workdir_user_and_hostname(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--env", "GREETING=hi there", "--workdir", "/tmp", "--user", "65534:65534",
                   "--hostname", "pyoci-host", IMAGE,
                   "sh", "-c", 'echo "$GREETING"; pwd; id; hostname')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hi there", "/tmp",
                                     "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)",
                                     "pyoci-host"]


def _cap_mask(names: str) -> int:
    from pyoci.linux.capabilities import CAPABILITY_NUMBERS
    mask = 0
    for name in names.split(","):
        name = name.strip()
        if name:
            mask |= 1 << CAPABILITY_NUMBERS[name if name.startswith("CAP_") else f"CAP_{name}"]
    return mask


def test_default_seccomp_profile_and_capabilities_are_in_force(podman: PodmanTest) -> None:
    name = podman.new()
    r = podman.run(IMAGE, "grep", "-E", "^(Cap|Seccomp|NoNewPrivs)", "/proc/self/status", name=name)
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line
                  and line.split(":", 1)[0] in ("CapEff", "CapBnd", "CapPrm", "Seccomp",
                                                "Seccomp_filters"))
    status = {k: v.strip() for k, v in status.items()}
    assert status["Seccomp"] == "2"
    assert int(status["Seccomp_filters"]) >= 1
    expected = _cap_mask(podman.inspect(name, "{{range .EffectiveCaps}}{{.}},{{end}}"))
    assert expected != 0
    assert int(status["CapBnd"], 16) == expected
    assert int(status["CapEff"], 16) == expected
    assert podman("rm", name).returncode == 0


def test_limits_the_host_forbids_fail_with_a_clear_message(podman: PodmanTest) -> None:
    """podman's own root default (nofile 1048576) needs CAP_SYS_RESOURCE, which these
    hosts lack: the runtime must say EPERM on setrlimit, not something vague."""
    name = podman.new()
    r = podman.run("--ulimit", "nofile=1048576:1048576", IMAGE, "true", name=name)
    assert r.returncode != 0
    err = r.stderr.lower()
    assert "operation not permitted" in err, r.stderr
    assert "rlimit" in err, r.stderr
    assert "eof" not in err, r.stderr
    # The runtime is named in runtime_supports_json, so podman gave it --log-format=json
    # --log <userdata>/oci-log and read the error from there: one JSON object.
    userdata = podman.podman.workdir / "runroot" / "overlay-containers" / podman.cid(name) / "userdata"
    entries = [json.loads(line) for line in (userdata / "oci-log").read_text().splitlines()]
    assert len(entries) == 1, entries
    assert entries[0]["level"] == "error"
    assert "operation not permitted" in entries[0]["msg"]
    # The same trap as CRI's sandbox oomScoreAdj -998.
    oom = podman.run("--rm", "--oom-score-adj", "-998", IMAGE, "true")
    assert oom.returncode != 0
    if runtime_name(podman.podman.runtime) == "pyoci":
        # (runc 1.1.5 says only "can't get final child's PID from pipe: EOF" here.)
        assert "oomScoreAdj -998" in oom.stderr and "CAP_SYS_RESOURCE" in oom.stderr, oom.stderr
    # And the tests' limits are what the container gets.
    ok = podman.run("--rm", IMAGE, "sh", "-c", "ulimit -n")
    assert ok.out == ULIMITS[0].split("=")[1].split(":")[0], ok.stderr


def test_create_then_start_attached(podman: PodmanTest) -> None:
    name = podman.new()
    r = podman("create", "--name", name, *podman.podman.run_flags(), IMAGE, "sh", "-c",
               "echo created-then-started; exit 2")
    assert r.returncode == 0, r.stderr
    started = podman("start", "--attach", name)
    assert started.returncode == 2, started.stderr
    assert "created-then-started" in started.stdout
    assert podman("rm", name).returncode == 0


def test_update_changes_a_running_containers_limits(podman: PodmanTest) -> None:
    """podman update calls the runtime's `update --resources=<file>`."""
    name = podman.new()
    assert podman.run("-d", "--memory", "64m", IMAGE, "sleep", "1000", name=name).returncode == 0
    r = podman("update", "--memory", "96m", "--cpu-period", "100000", "--cpu-quota", "50000", name)
    assert r.returncode == 0, r.stderr
    cid = podman.cid(name)
    base = f"/sys/fs/cgroup/%s/pyoci-it-podman/libpod-{cid}/%s"
    with open(base % ("memory", "memory.limit_in_bytes")) as f:
        assert f.read().strip() == str(96 * 1024 * 1024)
    with open(base % ("cpu", "cpu.cfs_quota_us")) as f:
        assert f.read().strip() == "50000"


def test_init_runs_catatonit_as_pid_1(podman: PodmanTest) -> None:
    name = podman.new()
    assert podman.run("-d", "--init", IMAGE, "sleep", "1000", name=name).returncode == 0
    # catatonit, bind-mounted by podman
    assert _pid1_cmdline(podman, name)[:3] == ["/run/podman-init", "--", "sleep"]
    # catatonit passes SIGTERM on to sleep, which dies of it: no escalation needed.
    assert podman("stop", "--time", "30", name).returncode == 0
    assert podman.inspect(name, "{{.State.ExitCode}}") == "143"


def test_join_another_containers_namespaces(podman: PodmanTest) -> None:
    """--ipc/--pid/--uts container:X are namespaces joined by path (/proc/<pid>/ns/...)."""
    first = podman.new()
    assert podman.run("-d", "--hostname", "first-host", IMAGE, "sleep", "1000",
                      name=first).returncode == 0
    r = podman.run("--rm", "--ipc", f"container:{first}", "--pid", f"container:{first}",
                   "--uts", f"container:{first}", IMAGE, "sh", "-c", "hostname; ps -o comm")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "first-host"
    assert lines.count("sleep") == 1 and "ps" in lines


def test_bind_mounted_volume_and_tmpfs(podman: PodmanTest, tmp_path: Path) -> None:
    (tmp_path / "in").write_text("from the host\n")
    r = podman.run("--rm", "-v", f"{tmp_path}:/data", "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
                   "cat /data/in; echo from-container >/data/out; grep ' /scratch ' /proc/mounts")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("from the host\n")
    assert "tmpfs" in r.stdout and "size=1024k" in r.stdout
    assert (tmp_path / "out").read_text() == "from-container\n"
    ro = podman.run("--rm", "-v", f"{tmp_path}:/data:ro", IMAGE, "touch", "/data/x")
    assert ro.returncode != 0
    assert "Read-only file system" in ro.stderr


def test_privileged_container_has_every_capability_and_no_seccomp(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--privileged", IMAGE, "sh", "-c",
                   "grep -E '^(CapBnd|Seccomp):' /proc/self/status; ls /dev | grep -c .")
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":\t") for line in r.stdout.splitlines() if ":\t" in line)
    with open("/proc/self/status") as f:
        host = dict(line.rstrip("\n").split(":\t") for line in f if line.startswith("CapBnd"))
    assert status["CapBnd"] == host["CapBnd"]
    assert status["Seccomp"] == "0"


def test_restart_a_stopped_container(podman: PodmanTest) -> None:
    name = podman.new()
    assert podman.run("-d", IMAGE, "sh", "-c", "echo run; sleep 1000", name=name).returncode == 0
    assert podman("restart", "--time", "0", name).returncode == 0
    podman.wait_status(name, "running")
    deadline = time.monotonic() + 10
    while podman("logs", name).stdout.count("run") < 2:
        assert time.monotonic() < deadline, podman("logs", name).stdout
        time.sleep(0.1)


def test_more_run_options_reach_the_container(podman: PodmanTest) -> None:
    r = podman.run("--rm", "--cgroupns", "private", "--sysctl", "kernel.msgmax=4096",
                   "--oom-score-adj", "100", "--cpus", "0.5", "--shm-size", "4m",
                   "--device", "/dev/null:/dev/mynull", "--cap-drop", "all",
                   "--security-opt", "no-new-privileges", IMAGE, "sh", "-c",
                   "grep memory /proc/self/cgroup; cat /proc/sys/kernel/msgmax /proc/self/oom_score_adj "
                   "/sys/fs/cgroup/cpu/cpu.cfs_quota_us; grep ' /dev/shm ' /proc/mounts; "
                   "echo x >/dev/mynull && echo wrote-mynull; "
                   "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith(":memory:/")  # its own cgroup is the root of its cgroup ns
    assert lines[1:4] == ["4096", "100", "50000"]
    assert "size=4096k" in lines[4]
    assert lines[5] == "wrote-mynull"
    assert lines[6].split() == ["CapEff:", "0000000000000000"]
    assert lines[7].split() == ["NoNewPrivs:", "1"]
