"""`linux.resources` as dataclasses, read from the JSON both `create` and `update` receive.

Zero-valued limits mean "not set" exactly where runc treats them so (memory limits, cpu
shares/quota/period, realtime, pids.limit, blkio weights); swappiness, idle and burst are
meaningful at zero. Every refusal names the JSON field it refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from pyoci.errors import ConfigError

UNLIMITED = -1


@dataclass(eq=False, repr=False, match_args=False)
class Memory:
    """`resources.memory` (bytes; None leaves the kernel's value)."""
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool = False


@dataclass(eq=False, repr=False, match_args=False)
class CPU:
    """`resources.cpu`: shares/weight, CFS quota and period, realtime, cpusets."""
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


@dataclass(eq=False, repr=False, match_args=False)
class WeightDevice:
    """A per-device block I/O weight."""
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@dataclass(eq=False, repr=False, match_args=False)
class ThrottleDevice:
    """A per-device block I/O rate limit."""
    major: int
    minor: int
    rate: int


@dataclass(eq=False, repr=False, match_args=False)
class BlockIO:
    """`resources.blockIO`."""
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: list[WeightDevice] = field(default_factory=list)
    throttle_read_bps: list[ThrottleDevice] = field(default_factory=list)
    throttle_write_bps: list[ThrottleDevice] = field(default_factory=list)
    throttle_read_iops: list[ThrottleDevice] = field(default_factory=list)
    throttle_write_iops: list[ThrottleDevice] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class HugepageLimit:
    """One `resources.hugepageLimits[]` entry."""
    page_size: str   # "2MB", "1GB" as in the OCI spec
    limit: int


@dataclass(eq=False, repr=False, match_args=False)
class Network:
    """`resources.network`: net_cls class id and net_prio priorities."""
    class_id: int | None = None
    priorities: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class DeviceRule:
    """One `resources.devices[]` allow or deny rule."""
    allow: bool
    type: str = "a"          # "a", "c" or "b"
    major: int | None = None  # None: any
    minor: int | None = None
    access: str = "rwm"


@dataclass(eq=False, repr=False, match_args=False)
class Resources:
    """`linux.resources`, as create applies it and update merges into it."""
    devices: list[DeviceRule] | None = None  # None: key absent (update leaves devices alone)
    memory: Memory | None = None
    cpu: CPU | None = None
    pids_limit: int | None = None
    block_io: BlockIO | None = None
    hugepage_limits: list[HugepageLimit] = field(default_factory=list)
    network: Network | None = None
    unified: dict[str, str] = field(default_factory=dict)
    rdma: dict[str, Any] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------

_KINDS = {int: "an integer", str: "a string", bool: "a boolean", dict: "an object",
          list: "an array"}


def _val(obj: dict, key: str, kind: type, path: str, required: bool = False) -> Any:
    where = f"{path}.{key}"
    if key not in obj or obj[key] is None:
        if required:
            raise ConfigError(f"{where}: is required")
        return None
    value = obj[key]
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: must be {_KINDS[kind]}")
    return value


def _unset_zero(value: int | None) -> int | None:
    return None if value == 0 else value


def _limit(obj: dict, key: str, path: str) -> int | None:
    """A byte limit: positive, or -1 for unlimited; 0 means not set."""
    value = _unset_zero(_val(obj, key, int, path))
    if value is not None and value < UNLIMITED:
        raise ConfigError(f"{path}.{key}: must be a positive number of bytes or -1 (unlimited)")
    return value


def _memory(d: dict, p: str) -> Memory:
    for key in ("kernel", "kernelTCP"):
        _val(d, key, int, p)  # type-checked, then ignored: kernel memory limits are gone
    swappiness = _val(d, "swappiness", int, p)
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise ConfigError(f"{p}.swappiness: must be between 0 and 100, not {swappiness}")
    return Memory(
        limit=_limit(d, "limit", p),
        reservation=_limit(d, "reservation", p),
        swap=_limit(d, "swap", p),
        swappiness=swappiness,
        disable_oom_killer=_val(d, "disableOOMKiller", bool, p),
        use_hierarchy=_val(d, "useHierarchy", bool, p),
        check_before_update=bool(_val(d, "checkBeforeUpdate", bool, p)),
    )


_CPU_LIST = re.compile(r"^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$")


def _cpu_list(d: dict, key: str, p: str) -> str | None:
    value = _val(d, key, str, p)
    if not value:
        return None
    if not _CPU_LIST.match(value):
        raise ConfigError(f"{p}.{key}: {value!r} is not a list like \"0-2,4\"")
    return value.strip()


def _cpu(d: dict, p: str) -> CPU:
    shares = _unset_zero(_val(d, "shares", int, p))
    quota = _unset_zero(_val(d, "quota", int, p))
    period = _unset_zero(_val(d, "period", int, p))
    burst = _val(d, "burst", int, p)
    idle = _val(d, "idle", int, p)
    for key, value in (("shares", shares), ("period", period), ("burst", burst)):
        if value is not None and value < 0:
            raise ConfigError(f"{p}.{key}: must not be negative")
    if quota is not None and quota < UNLIMITED:
        raise ConfigError(f"{p}.quota: must be positive or -1 (no limit)")
    if idle is not None and idle not in (0, 1):
        raise ConfigError(f"{p}.idle: must be 0 or 1")
    return CPU(
        shares=shares, quota=quota, burst=burst, period=period,
        realtime_runtime=_unset_zero(_val(d, "realtimeRuntime", int, p)),
        realtime_period=_unset_zero(_val(d, "realtimePeriod", int, p)),
        cpus=_cpu_list(d, "cpus", p), mems=_cpu_list(d, "mems", p), idle=idle,
    )


def _objects(d: dict, key: str, p: str) -> list[tuple[dict, str]]:
    items = _val(d, key, list, p) or []
    out = []
    for i, item in enumerate(items):
        where = f"{p}.{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object")
        out.append((item, where))
    return out


def _throttles(d: dict, key: str, p: str) -> list[ThrottleDevice]:
    return [ThrottleDevice(_val(o, "major", int, w, True), _val(o, "minor", int, w, True),
                           _val(o, "rate", int, w, True)) for o, w in _objects(d, key, p)]


def _weight(d: dict, key: str, p: str) -> int | None:
    value = _unset_zero(_val(d, key, int, p))
    if value is not None and not 10 <= value <= 1000:
        raise ConfigError(f"{p}.{key}: must be between 10 and 1000, not {value}")
    return value


def _block_io(d: dict, p: str) -> BlockIO:
    return BlockIO(
        weight=_weight(d, "weight", p),
        leaf_weight=_weight(d, "leafWeight", p),
        weight_device=[WeightDevice(_val(o, "major", int, w, True), _val(o, "minor", int, w, True),
                                    _weight(o, "weight", w), _weight(o, "leafWeight", w))
                       for o, w in _objects(d, "weightDevice", p)],
        throttle_read_bps=_throttles(d, "throttleReadBpsDevice", p),
        throttle_write_bps=_throttles(d, "throttleWriteBpsDevice", p),
        throttle_read_iops=_throttles(d, "throttleReadIOPSDevice", p),
        throttle_write_iops=_throttles(d, "throttleWriteIOPSDevice", p),
    )


_PAGE_SIZE = re.compile(r"^[1-9][0-9]*[KMGT]B$")


def _hugepages(d: dict, p: str) -> list[HugepageLimit]:
    out = []
    for o, w in _objects(d, "hugepageLimits", p):
        size = _val(o, "pageSize", str, w, True)
        if not _PAGE_SIZE.match(size):
            raise ConfigError(f"{w}.pageSize: {size!r} is not a size like \"2MB\" or \"1GB\"")
        out.append(HugepageLimit(size, _val(o, "limit", int, w, True)))
    return out


def _network(d: dict, p: str) -> Network:
    prios = [(_val(o, "name", str, w, True), _val(o, "priority", int, w, True))
             for o, w in _objects(d, "priorities", p)]
    return Network(class_id=_val(d, "classID", int, p), priorities=prios)


def _device_rules(d: dict, p: str) -> list[DeviceRule]:
    rules = []
    for o, w in _objects(d, "devices", p):
        allow = _val(o, "allow", bool, w, True)
        dtype = _val(o, "type", str, w) or "a"
        if dtype not in ("a", "c", "b", "u", "p"):
            raise ConfigError(f"{w}.type: must be one of a, c, b, not {dtype!r}")
        if dtype == "u":
            dtype = "c"  # unbuffered character devices are character devices to the cgroup
        if dtype == "p":
            continue  # FIFOs are not device nodes; the device cgroup never checks them
        major, minor = _val(o, "major", int, w), _val(o, "minor", int, w)
        access = _val(o, "access", str, w) or "rwm"
        if not access or any(c not in "rwm" for c in access) or len(set(access)) != len(access):
            raise ConfigError(f"{w}.access: must be a combination of r, w, m, not {access!r}")
        rules.append(DeviceRule(allow, dtype,
                                None if major is None or major < 0 else major,
                                None if minor is None or minor < 0 else minor,
                                "".join(c for c in "rwm" if c in access)))
    return rules


def _unified(d: dict, p: str) -> dict[str, str]:
    raw = _val(d, "unified", dict, p) or {}
    out = {}
    for key, value in raw.items():
        where = f"{p}.unified.{key}"
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        if not key or "/" in key or key in (".", "..") or "." not in key:
            raise ConfigError(f"{where}: is not a cgroup v2 file name like \"memory.high\"")
        out[key] = value
    return out


def from_json(doc: Any, path: str = "linux.resources") -> Resources:
    if doc is None:
        return Resources()
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: must be an object")

    def sub(key: str) -> tuple[dict, str] | None:
        value = _val(doc, key, dict, path)
        return None if value is None else (value, f"{path}.{key}")

    res = Resources()
    if "devices" in doc and doc["devices"] is not None:
        res.devices = _device_rules(doc, path)
    if (m := sub("memory")) is not None:
        res.memory = _memory(*m)
    if (c := sub("cpu")) is not None:
        res.cpu = _cpu(*c)
    if (pi := sub("pids")) is not None:
        # config-linux.md: 0 is a real pids limit (unlike 0 for the byte and cpu values).
        res.pids_limit = _val(pi[0], "limit", int, pi[1])
    if (b := sub("blockIO")) is not None:
        res.block_io = _block_io(*b)
    res.hugepage_limits = _hugepages(doc, path)
    if (n := sub("network")) is not None:
        res.network = _network(*n)
    res.unified = _unified(doc, path)
    res.rdma = _val(doc, "rdma", dict, path) or {}
    return res


# --- merging for update ----------------------------------------------------------

# Keys whose zero value means "keep what is there" when an update names them.
_ZERO_KEEPS = {
    "memory": {"limit", "reservation", "swap", "kernel", "kernelTCP"},
    "cpu": {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"},
    "pids": {"limit"},
    "blockIO": {"weight", "leafWeight"},
}


def merge_json(current: dict | None, update: dict) -> dict:
    """The resources JSON after `update`, field by field like runc: a field the update
    leaves out (or sets to zero where zero means unset) keeps its current value; lists
    are replaced whole."""
    merged: dict = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (current or {}).items()}
    for key, value in update.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            keeps = _ZERO_KEEPS.get(key, set())
            for sub_key, sub_value in value.items():
                if sub_value is None or (sub_key in keeps and sub_value in (0, "")):
                    continue
                merged[key][sub_key] = sub_value
        else:
            merged[key] = value
    return merged
