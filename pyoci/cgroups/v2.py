"""Applying resources to one cgroup2 directory, with runc's v1 -> v2 value conversions."""

from __future__ import annotations

import os

from pyoci.cgroups import fs
from pyoci.cgroups.resources import CPU, BlockIO, Memory, Resources, UNLIMITED
from pyoci.errors import ConfigError, PyociError


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) onto cpu.weight (1..10000), as runc maps it."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) onto io.weight (1..10000)."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int | None, limit: int | None) -> int | None:
    """v1 memsw (memory+swap) onto memory.swap.max (swap alone); None: leave it."""
    if swap is None:
        return None
    if swap == UNLIMITED:
        return UNLIMITED
    if limit is None or limit == UNLIMITED:
        raise ConfigError("linux.resources.memory.swap: cannot set a swap limit without a "
                          "memory limit on cgroup v2")
    if swap < limit:
        raise ConfigError(f"linux.resources.memory.swap: {swap} is below memory.limit {limit}; "
                          f"swap counts memory plus swap")
    return swap - limit


def _max(value: int) -> str:
    return "max" if value == UNLIMITED else str(value)


def controllers_needed(res: Resources, with_devices: bool = False) -> set[str]:
    """The cgroup2 controllers these resources write to (for cgroup.subtree_control)."""
    need: set[str] = set()
    if res.cpu is not None:
        c = res.cpu
        if any(v is not None for v in (c.shares, c.quota, c.period, c.burst, c.idle)):
            need.add("cpu")
        if c.cpus or c.mems:
            need.add("cpuset")
    if res.memory is not None and any(v is not None for v in (res.memory.limit,
                                                               res.memory.reservation,
                                                               res.memory.swap)):
        need.add("memory")
    if res.pids_limit is not None:
        need.add("pids")
    if res.block_io is not None:
        b = res.block_io
        if (b.weight or b.weight_device or b.throttle_read_bps or b.throttle_write_bps
                or b.throttle_read_iops or b.throttle_write_iops):
            need.add("io")
    if res.hugepage_limits:
        need.add("hugetlb")
    for key in res.unified:
        prefix = key.split(".", 1)[0]
        if prefix != "cgroup":
            need.add(prefix)
    return need


def apply(d: str, res: Resources, *, hugetlb_only: bool = False) -> None:
    """Write `res` into cgroup2 directory `d`. With `hugetlb_only` (hybrid hosts, where v1
    controllers handle everything else) only hugepage limits and raw `unified` keys go
    here."""
    if not hugetlb_only:
        if res.cpu is not None:
            _cpu(d, res.cpu)
        if res.memory is not None:
            _memory(d, res.memory)
        if res.pids_limit is not None:
            fs.write(d, "pids.max", "max" if res.pids_limit < 0 else res.pids_limit)
        if res.block_io is not None:
            _io(d, res.block_io)
        if res.network is not None and (res.network.class_id is not None
                                        or res.network.priorities):
            raise ConfigError("linux.resources.network: cgroup v2 has no net_cls/net_prio "
                              "controllers")
    for page in res.hugepage_limits:
        name = f"hugetlb.{page.page_size}.max"
        if not fs.exists(d, name):
            raise ConfigError(f"linux.resources.hugepageLimits: page size {page.page_size} is "
                              f"not supported here (no {os.path.join(d, name)})")
        fs.write(d, name, _max(page.limit))
    for key, value in res.unified.items():
        if not fs.exists(d, key):
            raise ConfigError(f"linux.resources.unified.{key}: no such file in {d} (controller "
                              f"not available?)")
        fs.write(d, key, value)


def _cpu(d: str, c: CPU) -> None:
    if c.realtime_runtime is not None or c.realtime_period is not None:
        raise ConfigError("linux.resources.cpu.realtimeRuntime/realtimePeriod: realtime "
                          "scheduling limits do not exist on cgroup v2")
    if c.shares is not None:
        fs.write(d, "cpu.weight", shares_to_weight(c.shares))
    if c.quota is not None or c.period is not None:
        quota = "max" if c.quota is None or c.quota == UNLIMITED else str(c.quota)
        line = quota if c.period is None else f"{quota} {c.period}"
        if c.quota is None and c.period is not None:
            # Keep the quota already there when only the period changes.
            current = fs.read(d, "cpu.max").split()[0] if fs.exists(d, "cpu.max") else "max"
            line = f"{current} {c.period}"
        fs.write(d, "cpu.max", line)
    if c.burst is not None:
        fs.write(d, "cpu.max.burst", c.burst)
    if c.idle is not None:
        fs.write(d, "cpu.idle", c.idle)
    if c.cpus:
        fs.write(d, "cpuset.cpus", c.cpus)
    if c.mems:
        fs.write(d, "cpuset.mems", c.mems)


def _memory(d: str, m: Memory) -> None:
    # swappiness and disableOOMKiller have no cgroup2 file; runc ignores them there too.
    if m.check_before_update and m.limit is not None and m.limit != UNLIMITED:
        usage = fs.read_int(d, "memory.current")
        if m.limit < usage:
            raise PyociError(f"linux.resources.memory.limit: {m.limit} is below the current "
                             f"usage {usage} (checkBeforeUpdate)")
    swap = swap_to_v2(m.swap, m.limit)
    if swap is not None:
        if not fs.exists(d, "memory.swap.max"):
            raise ConfigError("linux.resources.memory.swap: swap accounting is off in this "
                              "kernel (no memory.swap.max)")
        fs.write(d, "memory.swap.max", _max(swap))
    if m.limit is not None:
        fs.write(d, "memory.max", _max(m.limit))
    if m.reservation is not None:
        fs.write(d, "memory.low", _max(m.reservation))


def _io(d: str, b: BlockIO) -> None:
    bfq = fs.exists(d, "io.bfq.weight")
    if b.weight is not None:
        if bfq:
            fs.write(d, "io.bfq.weight", b.weight)
        else:
            fs.write(d, "io.weight", f"default {blkio_weight_to_io_weight(b.weight)}")
    for wd in b.weight_device:
        if wd.weight is None:
            continue
        if bfq:
            fs.write(d, "io.bfq.weight", f"{wd.major}:{wd.minor} {wd.weight}")
        else:
            fs.write(d, "io.weight",
                     f"{wd.major}:{wd.minor} {blkio_weight_to_io_weight(wd.weight)}")
    for key, items in (("rbps", b.throttle_read_bps), ("wbps", b.throttle_write_bps),
                       ("riops", b.throttle_read_iops), ("wiops", b.throttle_write_iops)):
        for t in items:
            fs.write(d, "io.max", f"{t.major}:{t.minor} {key}={t.rate}")


def enable_controllers(top: str, leaf: str, wanted: set[str]) -> None:
    """Turn `wanted` on in cgroup.subtree_control of every directory from `top` down to
    the parent of `leaf`, so `leaf` gets the controller files."""
    if not wanted:
        return
    rel = os.path.relpath(leaf, top)
    parts = [] if rel == "." else rel.split(os.sep)
    d = top
    for part in parts:
        available = set(fs.read(d, "cgroup.controllers").split())
        missing = wanted - available
        if missing:
            raise ConfigError(f"linux.resources: cgroup v2 controller(s) {', '.join(sorted(missing))} "
                              f"not available in {d}")
        enabled = set(fs.read(d, "cgroup.subtree_control").split())
        todo = wanted - enabled
        if todo:
            fs.write(d, "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(todo)))
        d = os.path.join(d, part)
