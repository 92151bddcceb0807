"""Per-process attributes of the container process: rlimits, oom_score_adj, personality,
I/O priority, scheduler, CPU affinity, umask, no_new_privs and sysctl.

Each setter takes the spec value, does one kernel call and turns a refusal into a
SyscallError that says what was asked and why the kernel may have refused it.
rlimits and oom_score_adj take a pid: runc sets them from the runtime's side, before
the process enters a user namespace, where raising them would need CAP_SYS_RESOURCE in
the host's namespace. Names were validated by pyoci.validate; a bad one still fails
here with a PyociError naming the field rather than being half applied.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource

from ..errors import PyociError, SyscallError
from ..spec import IOPriority, Personality, Rlimit, Scheduler

RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
# The flag bits of <linux/personality.h>; the runtime spec defines no flag names yet,
# these are the kernel's own.
PERSONALITY_FLAGS = {
    "UNAME26": 0x0020000,
    "ADDR_NO_RANDOMIZE": 0x0040000,
    "FDPIC_FUNCPTRS": 0x0080000,
    "MMAP_PAGE_ZERO": 0x0100000,
    "ADDR_COMPAT_LAYOUT": 0x0200000,
    "READ_IMPLIES_EXEC": 0x0400000,
    "ADDR_LIMIT_32BIT": 0x0800000,
    "SHORT_INODE": 0x1000000,
    "WHOLE_SECONDS": 0x2000000,
    "STICKY_TIMEOUTS": 0x4000000,
    "ADDR_LIMIT_3GB": 0x8000000,
}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
_IOPRIO_CLASS_SHIFT = 13
_IOPRIO_WHO_PROCESS = 1

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

_SYSCALLS = {
    "x86_64": {"ioprio_set": 251, "sched_setattr": 314},
    "aarch64": {"ioprio_set": 30, "sched_setattr": 274},
}
_PR_SET_NO_NEW_PRIVS = 38
_DEFAULT_UMASK = 0o022
_RLIM_INFINITY_U64 = 2**64 - 1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(name: str, *args: int | ctypes.c_void_p) -> None:
    try:
        number = _SYSCALLS[os.uname().machine][name]
    except KeyError:
        raise PyociError(f"{name}: not supported on {os.uname().machine}") from None
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    converted = [a if isinstance(a, ctypes.c_void_p) else ctypes.c_long(a) for a in args]
    if libc.syscall(ctypes.c_long(number), *converted) < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _limit_value(value: int) -> int:
    # OCI writes "unlimited" as the uint64 maximum; the resource module wants its own constant.
    return resource.RLIM_INFINITY if value >= _RLIM_INFINITY_U64 or value < 0 else value


def _limit_text(value: int) -> str:
    return "unlimited" if value >= _RLIM_INFINITY_U64 or value < 0 else str(value)


def apply_rlimits(rlimits: list[Rlimit], pid: int = 0, field: str = "process.rlimits") -> None:
    """Set every configured rlimit of `pid` (0: the caller) with prlimit(2)."""
    for i, limit in enumerate(rlimits):
        number = RLIMITS.get(limit.type)
        if number is None:
            raise PyociError(f"{field}[{i}].type: unknown rlimit {limit.type!r}")
        step = (f"setrlimit {limit.type} soft={_limit_text(limit.soft)} "
                f"hard={_limit_text(limit.hard)}")
        try:
            resource.prlimit(pid, number, (_limit_value(limit.soft), _limit_value(limit.hard)))
        except ValueError:
            raise PyociError(f"{field}[{i}]: {step}: the soft limit is above the hard limit") from None
        except OSError as e:
            err = SyscallError(step, e.errno or errno.EINVAL)
            if e.errno == errno.EPERM:
                err.message += (": the host's hard limit or missing CAP_SYS_RESOURCE "
                                "forbids raising it")
            elif e.errno == errno.EINVAL:
                err.message += ": the soft limit is above the hard limit or the value is too large"
            raise err from None


def set_oom_score_adj(value: int, pid: int | str = "self") -> None:
    """Write oom_score_adj (-1000..1000); lowering it needs CAP_SYS_RESOURCE."""
    path = f"/proc/{pid}/oom_score_adj"
    try:
        with open(path) as f:
            if int(f.read()) == value:
                # Set already, from the host side (pyoci.bootstrap): in a user namespace a
                # non-dumpable process may not write its own /proc files.
                return
    except (OSError, ValueError):
        pass
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        err = SyscallError(f"set oomScoreAdj {value} (write {path})", e.errno or errno.EIO)
        if e.errno in (errno.EACCES, errno.EPERM):
            err.message += ": lowering it below the current value needs CAP_SYS_RESOURCE"
        raise err from None


def personality_value(p: Personality, field: str = "linux.personality") -> int:
    domain = PERSONALITY_DOMAINS.get(p.domain)
    if domain is None:
        raise PyociError(f"{field}.domain: unknown personality domain {p.domain!r}")
    value = domain
    for i, flag in enumerate(p.flags):
        bit = PERSONALITY_FLAGS.get(flag)
        if bit is None:
            raise PyociError(f"{field}.flags[{i}]: unknown personality flag {flag!r}")
        value |= bit
    return value


def set_personality(p: Personality, field: str = "linux.personality") -> None:
    value = personality_value(p, field)
    libc = _libc()
    libc.personality.argtypes = [ctypes.c_ulong]
    libc.personality.restype = ctypes.c_int
    if libc.personality(value) == -1:
        raise SyscallError(f"set personality {p.domain} ({value:#x})", ctypes.get_errno())


def ioprio_value(io: IOPriority, field: str = "process.ioPriority") -> int:
    klass = IOPRIO_CLASSES.get(io.klass)
    if klass is None:
        raise PyociError(f"{field}.class: unknown I/O priority class {io.klass!r}")
    if not 0 <= io.priority <= 7:
        raise PyociError(f"{field}.priority: must be 0 to 7")
    return (klass << _IOPRIO_CLASS_SHIFT) | io.priority


def set_io_priority(io: IOPriority, pid: int = 0, field: str = "process.ioPriority") -> None:
    value = ioprio_value(io, field)
    try:
        _syscall("ioprio_set", _IOPRIO_WHO_PROCESS, pid, value)
    except OSError as e:
        err = SyscallError(f"set ioPriority {io.klass} {io.priority}", e.errno or errno.EINVAL)
        if e.errno == errno.EPERM:
            err.message += ": the realtime class needs CAP_SYS_ADMIN (or CAP_SYS_NICE)"
        raise err from None


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64),
                ("sched_util_min", ctypes.c_uint32), ("sched_util_max", ctypes.c_uint32)]


def sched_attr(s: Scheduler, field: str = "process.scheduler") -> _SchedAttr:
    policy = SCHED_POLICIES.get(s.policy)
    if policy is None:
        raise PyociError(f"{field}.policy: unknown scheduler policy {s.policy!r}")
    flags = 0
    for i, name in enumerate(s.flags):
        bit = SCHED_FLAGS.get(name)
        if bit is None:
            raise PyociError(f"{field}.flags[{i}]: unknown scheduler flag {name!r}")
        flags |= bit
    return _SchedAttr(size=ctypes.sizeof(_SchedAttr), sched_policy=policy, sched_flags=flags,
                      sched_nice=s.nice, sched_priority=s.priority, sched_runtime=s.runtime,
                      sched_deadline=s.deadline, sched_period=s.period)


def set_scheduler(s: Scheduler, pid: int = 0, field: str = "process.scheduler") -> None:
    attr = sched_attr(s, field)
    try:
        _syscall("sched_setattr", pid, ctypes.c_void_p(ctypes.addressof(attr)), 0)
    except OSError as e:
        err = SyscallError(f"set scheduler {s.policy} (sched_setattr)", e.errno or errno.EINVAL)
        if e.errno == errno.EPERM:
            err.message += ": realtime policies and negative nice need CAP_SYS_NICE"
        raise err from None


def parse_cpu_list(text: str, field: str = "process.execCPUAffinity") -> set[int]:
    """"0-3,7" -> {0, 1, 2, 3, 7}, the format of cpuset.cpus."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise PyociError(f"{field}: invalid CPU list {text!r}") from None
        if first > last or first < 0:
            raise PyociError(f"{field}: invalid CPU range {part!r}")
        cpus.update(range(first, last + 1))
    if not cpus:
        raise PyociError(f"{field}: empty CPU list {text!r}")
    return cpus


def set_cpu_affinity(cpu_list: str, pid: int = 0, field: str = "process.execCPUAffinity") -> None:
    cpus = parse_cpu_list(cpu_list, field)
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError as e:
        raise SyscallError(f"set CPU affinity {cpu_list}", e.errno or errno.EINVAL) from None


def set_umask(umask: int | None) -> None:
    """The configured umask, or 0022 like runc when the config has none."""
    os.umask(_DEFAULT_UMASK if umask is None else umask)


def set_no_new_privs() -> None:
    libc = _libc()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SyscallError("set no_new_privs", ctypes.get_errno())


def sysctl_path(key: str, proc: str = "/proc") -> str:
    # Dots separate the levels; a key cannot climb out of /proc/sys since every dot
    # (and so every "..") becomes a slash.
    return os.path.join(proc, "sys", key.replace(".", "/"))


def apply_sysctl(sysctl: dict[str, str], proc: str = "/proc", field: str = "linux.sysctl") -> None:
    """Write each key under <proc>/sys: call it in the container's namespaces, with the
    container's /proc mounted, so only namespaced values change."""
    for key, value in sysctl.items():
        path = sysctl_path(key, proc)
        try:
            with open(path, "w") as f:
                f.write(value)
        except FileNotFoundError:
            raise PyociError(f"{field}.{key}: no such sysctl ({path} does not exist)") from None
        except OSError as e:
            raise SyscallError(f"{field}.{key}: write {value!r} to {path}", e.errno or errno.EIO) from None
