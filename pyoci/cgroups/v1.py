"""Applying resources to cgroup v1 controllers, each in its own hierarchy directory."""

from __future__ import annotations

import errno

from pyoci.cgroups import fs
from pyoci.cgroups.resources import CPU, BlockIO, Memory, Network, Resources, UNLIMITED
from pyoci.errors import ConfigError, PyociError, SyscallError


def apply(dirs: dict[str, str], res: Resources) -> None:
    """Write every limit `res` sets. `dirs` maps v1 controller -> its directory; a limit
    whose controller is not there is an error (runc: "container could not join or
    create cgroup"), except those the caller routes elsewhere (hugetlb, unified)."""
    if res.cpu is not None:
        _cpuset(_need(dirs, "cpuset", "cpu.cpus", res.cpu.cpus or res.cpu.mems), res.cpu)
        _cpu(dirs, res.cpu)
    if res.memory is not None:
        _memory(_need(dirs, "memory", "memory", _memory_set(res.memory)), res.memory)
    if res.pids_limit is not None:
        d = _need(dirs, "pids", "pids.limit", True)
        fs.write(d, "pids.max", "max" if res.pids_limit < 0 else res.pids_limit)
    if res.block_io is not None:
        _blkio(dirs, res.block_io)
    if res.network is not None:
        _network(dirs, res.network)


def _need(dirs: dict[str, str], controller: str, field: str, wanted: object) -> str:
    if not wanted:
        return dirs.get(controller, "")
    d = dirs.get(controller)
    if not d:
        raise ConfigError(f"linux.resources.{field}: the {controller} cgroup controller is "
                          f"not mounted on this host")
    return d


def _cpuset(d: str, cpu: CPU) -> None:
    if cpu.cpus:
        fs.write(d, "cpuset.cpus", cpu.cpus)
    if cpu.mems:
        fs.write(d, "cpuset.mems", cpu.mems)


def _cpu(dirs: dict[str, str], cpu: CPU) -> None:
    wanted = any(v is not None for v in (cpu.shares, cpu.quota, cpu.period, cpu.burst,
                                         cpu.realtime_runtime, cpu.realtime_period, cpu.idle))
    d = _need(dirs, "cpu", "cpu", wanted)
    if not wanted:
        return
    if cpu.shares is not None:
        fs.write(d, "cpu.shares", cpu.shares)
        got = fs.read_int(d, "cpu.shares")
        if got != cpu.shares:
            # The kernel clamps silently; say so like runc does.
            raise ConfigError(f"linux.resources.cpu.shares: {cpu.shares} is out of range, the "
                              f"kernel set {got}")
    if cpu.period is not None or cpu.quota is not None:
        # A new period may be refused while the old quota does not fit it, and the other
        # way round, so try both orders.
        try:
            _period_quota(d, cpu, period_first=True)
        except SyscallError as e:
            if e.errno != errno.EINVAL:
                raise
            _period_quota(d, cpu, period_first=False)
    if cpu.burst is not None:
        fs.write(d, "cpu.cfs_burst_us", cpu.burst)
    if cpu.realtime_period is not None:
        fs.write(d, "cpu.rt_period_us", cpu.realtime_period)
    if cpu.realtime_runtime is not None:
        fs.write(d, "cpu.rt_runtime_us", cpu.realtime_runtime)
    if cpu.idle is not None:
        fs.write(d, "cpu.idle", cpu.idle)


def _period_quota(d: str, cpu: CPU, period_first: bool) -> None:
    steps = [("cpu.cfs_period_us", cpu.period), ("cpu.cfs_quota_us", cpu.quota)]
    for name, value in steps if period_first else reversed(steps):
        if value is not None:
            fs.write(d, name, value)


def _memory_set(m: Memory) -> bool:
    return any(v is not None for v in (m.limit, m.reservation, m.swap, m.swappiness,
                                       m.disable_oom_killer)) or m.check_before_update


def _memory(d: str, m: Memory) -> None:
    if not d:
        return
    if m.check_before_update and m.limit is not None and m.limit != UNLIMITED:
        usage = fs.read_int(d, "memory.usage_in_bytes")
        if m.limit < usage:
            raise PyociError(f"linux.resources.memory.limit: {m.limit} is below the current "
                             f"usage {usage} (checkBeforeUpdate)")
    has_swap = fs.exists(d, "memory.memsw.limit_in_bytes")
    swap = m.swap
    if m.limit == UNLIMITED and swap is None and has_swap:
        swap = UNLIMITED  # lifting the memory limit lifts the combined one too
    if swap is not None and not has_swap:
        raise ConfigError("linux.resources.memory.swap: swap accounting is off in this kernel "
                          "(no memory.memsw.limit_in_bytes)")
    if m.limit is not None and swap is not None:
        current = fs.read_int(d, "memory.limit_in_bytes")
        # memory.limit must stay <= memsw.limit at every step.
        if m.limit == UNLIMITED or m.limit > current:
            fs.write(d, "memory.memsw.limit_in_bytes", swap)
            fs.write(d, "memory.limit_in_bytes", m.limit)
        else:
            fs.write(d, "memory.limit_in_bytes", m.limit)
            fs.write(d, "memory.memsw.limit_in_bytes", swap)
    elif m.limit is not None:
        fs.write(d, "memory.limit_in_bytes", m.limit)
    elif swap is not None:
        fs.write(d, "memory.memsw.limit_in_bytes", swap)
    if m.reservation is not None:
        fs.write(d, "memory.soft_limit_in_bytes", m.reservation)
    if m.swappiness is not None:
        fs.write(d, "memory.swappiness", m.swappiness)
    if m.disable_oom_killer:
        fs.write(d, "memory.oom_control", 1)


def _blkio(dirs: dict[str, str], b: BlockIO) -> None:
    wanted = (b.weight is not None or b.leaf_weight is not None or b.weight_device
              or b.throttle_read_bps or b.throttle_write_bps or b.throttle_read_iops
              or b.throttle_write_iops)
    d = _need(dirs, "blkio", "blockIO", wanted)
    if not wanted:
        return
    # CFQ's files are gone from current kernels; BFQ's stand in when present.
    prefix = "blkio." if fs.exists(d, "blkio.weight") else "blkio.bfq."
    if b.weight is not None:
        fs.write(d, prefix + "weight", b.weight)
    if b.leaf_weight is not None:
        if not fs.exists(d, "blkio.leaf_weight"):
            raise ConfigError("linux.resources.blockIO.leafWeight: not supported by this "
                              "kernel (no blkio.leaf_weight)")
        fs.write(d, "blkio.leaf_weight", b.leaf_weight)
    for wd in b.weight_device:
        if wd.weight is not None:
            fs.write(d, prefix + "weight_device", f"{wd.major}:{wd.minor} {wd.weight}")
        if wd.leaf_weight is not None:
            fs.write(d, "blkio.leaf_weight_device", f"{wd.major}:{wd.minor} {wd.leaf_weight}")
    for name, items in (("read_bps_device", b.throttle_read_bps),
                        ("write_bps_device", b.throttle_write_bps),
                        ("read_iops_device", b.throttle_read_iops),
                        ("write_iops_device", b.throttle_write_iops)):
        for t in items:
            fs.write(d, f"blkio.throttle.{name}", f"{t.major}:{t.minor} {t.rate}")


def _network(dirs: dict[str, str], n: Network) -> None:
    if n.class_id is not None:
        d = _need(dirs, "net_cls", "network.classID", True)
        fs.write(d, "net_cls.classid", n.class_id)
    if n.priorities:
        d = _need(dirs, "net_prio", "network.priorities", True)
        for name, prio in n.priorities:
            fs.write(d, "net_prio.ifpriomap", f"{name} {prio}")


def hugetlb(d: str, page_size: str, limit: int) -> None:
    name = f"hugetlb.{page_size}.limit_in_bytes"
    if not fs.exists(d, name):
        raise ConfigError(f"linux.resources.hugepageLimits: page size {page_size} is not "
                          f"supported here (no {name})")
    fs.write(d, name, limit)


def cpuset_inherit(parent: str, child: str) -> None:
    """A new v1 cpuset starts empty and cannot hold a task; copy the parent's sets."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not fs.read(child, name):
            fs.write(child, name, fs.read(parent, name))
