"""rlimits, oom_score_adj, personality, I/O priority, scheduler, affinity, umask,
no_new_privs and sysctl, set in a forked child on the real kernel."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess

import pytest

from hardening_helpers import run_in_child
from pyoci.errors import PyociError
from pyoci.linux import process_attrs as attrs
from pyoci.spec import IOPriority, Personality, Rlimit, Scheduler

UNLIMITED = 2**64 - 1
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000


def _limits(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        soft, hard = line[26:].split()[:2]
        rows[name] = (soft, hard)
    return rows


def _error_of(fn):
    def child():
        try:
            fn()
        except PyociError as e:
            return str(e)
        return None
    return json.loads(run_in_child(child).stdout)


def test_rlimits_are_visible_in_proc_limits():
    limits = [Rlimit("RLIMIT_NOFILE", hard=2048, soft=1024), Rlimit("RLIMIT_CORE", hard=UNLIMITED, soft=0),
              Rlimit("RLIMIT_NPROC", hard=300, soft=200), Rlimit("RLIMIT_MSGQUEUE", hard=4096, soft=4096),
              Rlimit("RLIMIT_RTTIME", hard=UNLIMITED, soft=UNLIMITED)]
    r = run_in_child(lambda: attrs.apply_rlimits(limits), ["/bin/cat", "/proc/self/limits"])
    rows = _limits(r.stdout)
    assert rows["Max open files"] == ("1024", "2048")
    assert rows["Max core file size"] == ("0", "unlimited")
    assert rows["Max processes"] == ("200", "300")
    assert rows["Max msgqueue size"] == ("4096", "4096")
    assert rows["Max realtime timeout"] == ("unlimited", "unlimited")


def test_rlimits_of_another_process():
    # The runtime sets rlimits from outside, before the process enters a user namespace.
    proc = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE)
    try:
        attrs.apply_rlimits([Rlimit("RLIMIT_NOFILE", hard=512, soft=256)], pid=proc.pid)
        with open(f"/proc/{proc.pid}/limits") as f:
            assert _limits(f.read())["Max open files"] == ("256", "512")
    finally:
        proc.stdin.close()
        proc.wait()


def test_every_rlimit_name_is_known():
    assert sorted(attrs.RLIMITS.values()) == list(range(16))
    for name, number in attrs.RLIMITS.items():
        if hasattr(resource, name):
            assert getattr(resource, name) == number


def test_raising_above_the_hard_limit_explains_eperm():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("host hard limit is unlimited")  # pragma: no cover - not this host

    def raise_it():
        # Without CAP_SYS_RESOURCE (this host's bounding set has none) a hard limit
        # cannot go up.
        from pyoci.linux import capabilities as caps
        plan = caps.plan_capabilities(None)
        caps.drop_bounding(plan)
        caps.apply_sets(plan)
        attrs.apply_rlimits([Rlimit("RLIMIT_NOFILE", hard=1048576, soft=1048576)])
    msg = _error_of(raise_it)
    assert msg == ("setrlimit RLIMIT_NOFILE soft=1048576 hard=1048576: operation not permitted (EPERM): "
                   "the host's hard limit or missing CAP_SYS_RESOURCE forbids raising it")


def test_soft_above_hard_and_unknown_name():
    assert "soft limit is above the hard limit" in _error_of(
        lambda: attrs.apply_rlimits([Rlimit("RLIMIT_NOFILE", hard=10, soft=20)]))
    assert _error_of(lambda: attrs.apply_rlimits([Rlimit("RLIMIT_NOFILE", hard=10, soft=10),
                                                  Rlimit("RLIMIT_BOGUS", hard=1, soft=1)])) == \
        "process.rlimits[1].type: unknown rlimit 'RLIMIT_BOGUS'"


def test_oom_score_adj():
    r = run_in_child(lambda: attrs.set_oom_score_adj(500), ["/bin/cat", "/proc/self/oom_score_adj"])
    assert r.stdout.strip() == "500"


def test_lowering_oom_score_adj_without_cap_sys_resource_is_explained():
    def lower():
        attrs.set_oom_score_adj(500)
        from pyoci.linux import capabilities as caps
        plan = caps.plan_capabilities(None)
        caps.apply_sets(plan)
        attrs.set_oom_score_adj(-500)
    msg = _error_of(lower)
    assert msg.startswith("set oomScoreAdj -500 (write /proc/self/oom_score_adj): permission denied (EACCES)")
    assert msg.endswith("needs CAP_SYS_RESOURCE")


def test_personality_linux32_and_flags():
    r = run_in_child(lambda: attrs.set_personality(Personality("LINUX32")), ["/bin/uname", "-m"])
    assert r.stdout.strip() in ("i686", "armv8l")
    r = run_in_child(lambda: attrs.set_personality(Personality("LINUX", ["ADDR_NO_RANDOMIZE"])),
                     ["/bin/cat", "/proc/self/personality"])
    assert int(r.stdout, 16) == 0x0040000
    assert _error_of(lambda: attrs.set_personality(Personality("LINUX64"))) == \
        "linux.personality.domain: unknown personality domain 'LINUX64'"


def test_io_priority():
    r = run_in_child(lambda: attrs.set_io_priority(IOPriority("IOPRIO_CLASS_BE", 5)),
                     ["/usr/bin/ionice", "-p", "0"])
    assert r.stdout.strip() == "best-effort: prio 5"
    r = run_in_child(lambda: attrs.set_io_priority(IOPriority("IOPRIO_CLASS_IDLE", 0)),
                     ["/usr/bin/ionice", "-p", "0"])
    assert r.stdout.strip() == "idle"
    assert _error_of(lambda: attrs.set_io_priority(IOPriority("IOPRIO_CLASS_BE", 9))) == \
        "process.ioPriority.priority: must be 0 to 7"


def test_scheduler():
    def batch():
        attrs.set_scheduler(Scheduler("SCHED_BATCH", nice=7, flags=["SCHED_FLAG_RESET_ON_FORK"]))
        return [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)]
    got = json.loads(run_in_child(batch).stdout)
    # RESET_ON_FORK shows as a flag bit on the policy.
    assert got == [os.SCHED_BATCH | os.SCHED_RESET_ON_FORK, 7]

    def fifo():
        attrs.set_scheduler(Scheduler("SCHED_FIFO", priority=10))
        return [os.sched_getscheduler(0), os.sched_getparam(0).sched_priority]
    r = run_in_child(fifo)
    assert json.loads(r.stdout) == [os.SCHED_FIFO, 10], r.stderr
    assert _error_of(lambda: attrs.set_scheduler(Scheduler("SCHED_FIFO", priority=1000))).startswith(
        "set scheduler SCHED_FIFO (sched_setattr): invalid argument (EINVAL)")


def test_cpu_affinity():
    assert attrs.parse_cpu_list("0-2, 5,7-7") == {0, 1, 2, 5, 7}
    with pytest.raises(PyociError):
        attrs.parse_cpu_list("3-1")

    def pin():
        attrs.set_cpu_affinity("0")
        return sorted(os.sched_getaffinity(0))
    assert json.loads(run_in_child(pin).stdout) == [0]


def test_umask_and_no_new_privs():
    def child():
        attrs.set_umask(0o027)
        first = os.umask(0)
        attrs.set_umask(None)
        second = os.umask(0)
        attrs.set_no_new_privs()
        with open("/proc/self/status") as f:
            nnp = [line.split()[1] for line in f if line.startswith("NoNewPrivs")]
        return [first, second, nnp[0]]
    assert json.loads(run_in_child(child).stdout) == [0o027, 0o022, "1"]


def test_sysctl_writes_namespaced_values():
    def child():
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.unshare(CLONE_NEWUTS | CLONE_NEWIPC) == 0
        attrs.apply_sysctl({"kernel.hostname": "hard-sysctl", "kernel.msgmax": "4242"})
        with open("/proc/sys/kernel/msgmax") as f:
            return [os.uname().nodename, f.read().strip()]
    assert json.loads(run_in_child(child).stdout) == ["hard-sysctl", "4242"]
    assert os.uname().nodename != "hard-sysctl"


def test_sysctl_errors_name_the_key():
    assert attrs.sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert attrs.sysctl_path("a..b", "/x") == "/x/sys/a//b"
    msg = _error_of(lambda: attrs.apply_sysctl({"kernel.no_such_key_hard": "1"}))
    assert msg == "linux.sysctl.kernel.no_such_key_hard: no such sysctl (/proc/sys/kernel/no_such_key_hard does not exist)"
