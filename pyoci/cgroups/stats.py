"""The `data` object of runc's `events --stats`, read from v1 or v2 files.

Field names and zero-omission follow runc's JSON; values are bytes, nanoseconds and
counts as the kernel reports them.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from pyoci.cgroups import fs

MAX_U64 = 2**64 - 1
_USER_HZ_NS = 10_000_000  # cpuacct.stat counts in USER_HZ (100) ticks


def _drop_zero(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not (k in keys and not v)}


def _int_or_zero(directory: str, name: str) -> int:
    if not directory or not fs.exists(directory, name):
        return 0
    text = fs.read(directory, name)
    return MAX_U64 if text == "max" else int(text.split()[0] or 0)


def _ints(directory: str, name: str) -> list[int]:
    if not fs.exists(directory, name):
        return []
    return [int(x) for x in fs.read(directory, name).split()]


def _keyed(directory: str, name: str) -> dict[str, int]:
    if not directory or not fs.exists(directory, name):
        return {}
    return fs.read_keyed(directory, name)


# --- v1 ------------------------------------------------------------------------

def cpu_v1(cpu_dir: str, cpuacct_dir: str) -> dict[str, Any]:
    usage: dict[str, Any] = {"total": _int_or_zero(cpuacct_dir, "cpuacct.usage"),
                             "kernel": 0, "user": 0}
    if cpuacct_dir:
        usage["percpu"] = _ints(cpuacct_dir, "cpuacct.usage_percpu")
        usage["percpu_kernel"] = _ints(cpuacct_dir, "cpuacct.usage_percpu_sys")
        usage["percpu_user"] = _ints(cpuacct_dir, "cpuacct.usage_percpu_user")
        ticks = _keyed(cpuacct_dir, "cpuacct.stat")
        usage["kernel"] = ticks.get("system", 0) * _USER_HZ_NS
        usage["user"] = ticks.get("user", 0) * _USER_HZ_NS
    stat = _keyed(cpu_dir, "cpu.stat")
    throttling = {"periods": stat.get("nr_periods", 0),
                  "throttled_periods": stat.get("nr_throttled", 0),
                  "throttled_time": stat.get("throttled_time", 0)}
    return {"usage": _drop_zero(usage, "percpu", "percpu_kernel", "percpu_user"),
            "throttling": _drop_zero(throttling, *throttling)}


def _mem_entry_v1(d: str, prefix: str) -> dict[str, Any]:
    entry = {"limit": _int_or_zero(d, prefix + "limit_in_bytes"),
             "usage": _int_or_zero(d, prefix + "usage_in_bytes"),
             "max": _int_or_zero(d, prefix + "max_usage_in_bytes"),
             "failcnt": _int_or_zero(d, prefix + "failcnt")}
    return _drop_zero(entry, "usage", "max")


def memory_v1(d: str) -> dict[str, Any]:
    raw = _keyed(d, "memory.stat")
    out: dict[str, Any] = {
        "cache": raw.get("total_cache", raw.get("cache", 0)),
        "usage": _mem_entry_v1(d, "memory."),
        "swap": _mem_entry_v1(d, "memory.memsw.") if fs.exists(d, "memory.memsw.usage_in_bytes")
        else {},
        "kernel": _mem_entry_v1(d, "memory.kmem."),
        "kernelTCP": _mem_entry_v1(d, "memory.kmem.tcp."),
        "raw": raw,
    }
    return _drop_zero(out, *out)


def _blkio_entries(d: str, name: str) -> list[dict[str, Any]]:
    if not fs.exists(d, name):
        return []
    entries = []
    for line in fs.read(d, name).splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue  # the trailing "Total N" line
        major, minor = parts[0].split(":")
        entries.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
    return entries


def blkio_v1(d: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Prefer the BFQ (or CFQ) accounting, fall back to the throttle layer's, like runc.
    for key, names in (("ioServiceBytesRecursive", ("blkio.bfq.io_service_bytes_recursive",
                                                    "blkio.io_service_bytes_recursive",
                                                    "blkio.throttle.io_service_bytes_recursive")),
                       ("ioServicedRecursive", ("blkio.bfq.io_serviced_recursive",
                                                "blkio.io_serviced_recursive",
                                                "blkio.throttle.io_serviced_recursive"))):
        for name in names:
            entries = _blkio_entries(d, name)
            if entries:
                out[key] = entries
                break
    return out


def hugetlb_v1(d: str, sizes: list[str]) -> dict[str, Any]:
    out = {}
    for size in sizes:
        prefix = f"hugetlb.{size}."
        if fs.exists(d, prefix + "usage_in_bytes"):
            out[size] = _drop_zero({"usage": _int_or_zero(d, prefix + "usage_in_bytes"),
                                    "max": _int_or_zero(d, prefix + "max_usage_in_bytes"),
                                    "failcnt": _int_or_zero(d, prefix + "failcnt")},
                                   "usage", "max")
    return out


def pids_stats(d: str, v2: bool) -> dict[str, Any]:
    limit = _int_or_zero(d, "pids.max")
    return _drop_zero({"current": _int_or_zero(d, "pids.current"),
                       "limit": 0 if limit == MAX_U64 else limit}, "current", "limit")


# --- v2 ------------------------------------------------------------------------

def cpu_v2(d: str) -> dict[str, Any]:
    stat = _keyed(d, "cpu.stat")
    usage = {"total": stat.get("usage_usec", 0) * 1000,
             "kernel": stat.get("system_usec", 0) * 1000,
             "user": stat.get("user_usec", 0) * 1000}
    throttling = {"periods": stat.get("nr_periods", 0),
                  "throttled_periods": stat.get("nr_throttled", 0),
                  "throttled_time": stat.get("throttled_usec", 0) * 1000}
    return {"usage": usage, "throttling": _drop_zero(throttling, *throttling)}


def memory_v2(d: str) -> dict[str, Any]:
    raw = _keyed(d, "memory.stat")
    events = _keyed(d, "memory.events")
    usage = {"limit": _int_or_zero(d, "memory.max"),
             "usage": _int_or_zero(d, "memory.current"),
             "max": _int_or_zero(d, "memory.peak"),
             "failcnt": events.get("max", 0)}
    out: dict[str, Any] = {"cache": raw.get("file", 0), "usage": _drop_zero(usage, "usage", "max"),
                           "raw": raw}
    if fs.exists(d, "memory.swap.current"):
        # Reported as memory+swap, the unit v1 users and runc's output expect.
        swap_max = _int_or_zero(d, "memory.swap.max")
        limit = usage["limit"]
        combined = MAX_U64 if MAX_U64 in (swap_max, limit) else swap_max + limit
        out["swap"] = _drop_zero({"limit": combined,
                                  "usage": _int_or_zero(d, "memory.swap.current") + usage["usage"],
                                  "failcnt": _keyed(d, "memory.swap.events").get("max", 0)},
                                 "usage")
    return _drop_zero(out, *out)


def blkio_v2(d: str) -> dict[str, Any]:
    if not fs.exists(d, "io.stat"):
        return {}
    service_bytes, serviced = [], []
    for line in fs.read(d, "io.stat").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        values = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, target in (("rbytes", "Read", service_bytes), ("wbytes", "Write", service_bytes),
                                ("rios", "Read", serviced), ("wios", "Write", serviced)):
            if key in values:
                target.append({"major": major, "minor": minor, "op": op, "value": int(values[key])})
    return _drop_zero({"ioServiceBytesRecursive": service_bytes,
                       "ioServicedRecursive": serviced}, "ioServiceBytesRecursive",
                      "ioServicedRecursive")


def hugetlb_v2(d: str, sizes: list[str]) -> dict[str, Any]:
    out = {}
    for size in sizes:
        prefix = f"hugetlb.{size}."
        if fs.exists(d, prefix + "current"):
            out[size] = _drop_zero({"usage": _int_or_zero(d, prefix + "current"),
                                    "max": _int_or_zero(d, prefix + "max"),
                                    "failcnt": _keyed(d, prefix + "events").get("max", 0)},
                                   "usage", "max")
    return out


def hugepage_sizes(sysfs: str = "/sys/kernel/mm/hugepages") -> list[str]:
    """Kernel page sizes in cgroup file form: hugepages-2048kB -> "2MB"."""
    sizes = []
    try:
        names = os.listdir(sysfs)
    except OSError:
        return []
    for name in sorted(names):
        if not name.startswith("hugepages-") or not name.endswith("kB"):
            continue
        kb = int(name[len("hugepages-"):-2])
        for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % div == 0:
                sizes.append(f"{kb // div}{unit}")
                break
    return sizes
