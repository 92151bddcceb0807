"""The five capability sets of the container process.

python-prctl does the work it has calls for (bounding-set drops, keepcaps, capset through
libcap); the ambient set goes through prctl(PR_CAP_AMBIENT) with ctypes because the
library has no call for it. prctl is imported inside the functions: most pyoci
invocations (state, kill, delete) never touch capabilities.

Order matters and follows runc: drop the bounding set and set keepcaps while still
root, switch the user, then set effective/permitted/inheritable and finally ambient
(the kernel clears the ambient set on a switch away from uid 0, and refuses an ambient
capability that is not both permitted and inheritable).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from ..errors import SyscallError
from ..spec import Capabilities

# Every capability Linux defines, by number (include/uapi/linux/capability.h).
CAPABILITY_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

SET_NAMES = ("bounding", "effective", "permitted", "inheritable", "ambient")

_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"


@dataclass
class CapabilityPlan:
    """The configured sets as numbers, limited to what the running kernel knows.

    A set missing from the config (or no `capabilities` at all) is empty, as in runc:
    the container gets no capability nobody asked for.
    """

    bounding: set[int]
    effective: set[int]
    permitted: set[int]
    inheritable: set[int]
    ambient: set[int]
    warnings: list[str]


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open(_LAST_CAP_FILE) as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(CAPABILITY_NUMBERS.values())


def plan_capabilities(caps: Capabilities | None, kernel_last_cap: int | None = None,
                      field: str = "process.capabilities") -> CapabilityPlan:
    """Translate names to numbers; skip (with a warning) those the kernel lacks.

    A name pyoci does not know at all is skipped with a warning too: config.md asks
    runtimes to log what they cannot map to the kernel and not to fail on it
    (`pyoci validate` reports such names as errors).
    """
    top = last_cap() if kernel_last_cap is None else kernel_last_cap
    caps = caps or Capabilities()
    warnings: list[str] = []
    sets: dict[str, set[int]] = {}
    for set_name in SET_NAMES:
        names = getattr(caps, set_name) or []
        numbers: set[int] = set()
        for i, name in enumerate(names):
            number = CAPABILITY_NUMBERS.get(name)
            if number is None:
                warning = f"{field}.{set_name}[{i}]: unknown capability {name}; skipped"
                if warning not in warnings:
                    warnings.append(warning)
                continue
            if number > top:
                warning = f"{field}.{set_name}: {name} is not supported by the running kernel; skipped"
                if warning not in warnings:
                    warnings.append(warning)
                continue
            numbers.add(number)
        sets[set_name] = numbers
    return CapabilityPlan(bounding=sets["bounding"], effective=sets["effective"],
                          permitted=sets["permitted"], inheritable=sets["inheritable"],
                          ambient=sets["ambient"], warnings=warnings)


def preload() -> None:
    """Import python-prctl now: the init calls this before pivot_root, after which the
    host's site-packages are out of reach and a lazy import would fail."""
    import _prctl  # noqa: F401
    import prctl  # noqa: F401


def _libc_prctl(option: int, arg2: int, arg3: int, step: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    result = libc.prctl(option, arg2, arg3, 0, 0)
    if result < 0:
        raise SyscallError(step, ctypes.get_errno())
    return result


def _name(number: int) -> str:
    for name, value in CAPABILITY_NUMBERS.items():
        if value == number:
            return name
    return str(number)


def drop_bounding(plan: CapabilityPlan) -> None:
    """Drop from the bounding set every capability not configured (needs CAP_SETPCAP)."""
    for number in range(last_cap() + 1):
        if number in plan.bounding:
            continue
        if _libc_prctl(_PR_CAPBSET_READ, number, 0, f"read bounding capability {_name(number)}") == 0:
            continue
        _libc_prctl(_PR_CAPBSET_DROP, number, 0, f"drop bounding capability {_name(number)}")


def set_keepcaps(keep: bool = True) -> None:
    """Keep the permitted set across the switch away from uid 0 (PR_SET_KEEPCAPS)."""
    import prctl
    try:
        prctl.set_keepcaps(keep)
    except OSError as e:
        raise SyscallError("set keepcaps", e.errno or 0) from None


def apply_sets(plan: CapabilityPlan) -> list[str]:
    """Set effective, permitted and inheritable exactly, then the ambient set.

    Call it after the user switch: every set ends up as configured, whatever the uid.
    An ambient capability that is not both permitted and inheritable cannot be raised;
    runc 1.1 skips it silently (its own default config asks for such ones), so does
    this: the names skipped are returned.
    """
    import _prctl  # python-prctl's C module: capset through libcap with plain numbers
    every = list(range(last_cap() + 1))
    try:
        _prctl.set_caps(sorted(plan.effective), sorted(plan.permitted), sorted(plan.inheritable),
                        [c for c in every if c not in plan.effective],
                        [c for c in every if c not in plan.permitted],
                        [c for c in every if c not in plan.inheritable])
    except OSError as e:
        raise SyscallError("set capabilities (effective, permitted, inheritable)", e.errno or 0) from None
    _libc_prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, "clear ambient capabilities")
    skipped = []
    for number in sorted(plan.ambient):
        if number not in plan.permitted or number not in plan.inheritable:
            skipped.append(_name(number))
            continue
        _libc_prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, number,
                    f"raise ambient capability {_name(number)}")
    return skipped


def read_sets(status_path: str = "/proc/self/status") -> dict[str, int]:
    """The Cap* lines of a status file as bitmasks: {"CapEff": 0x..., ...}."""
    sets = {}
    with open(status_path) as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                sets[key] = int(value.strip(), 16)
    return sets


def mask(numbers: set[int]) -> int:
    """Bitmask of a set of capability numbers, as /proc/<pid>/status prints it."""
    value = 0
    for number in numbers:
        value |= 1 << number
    return value
