"""config-linux.md control groups: cgroupsPath and resources, read from the host side.

The container's cgroup is found through /proc/<pid>/cgroup and the cgroup mounts of
/proc/self/mountinfo, so the checks work on v1, hybrid and v2 hosts.
"""

from __future__ import annotations

from pathlib import Path

from conformance.bundle import CGROUP_PARENT
from conformance.context import Context
from conformance.outcome import CheckFailed, Skipped, expect, expect_equal
from conformance.registry import case

V1_CONTROLLERS = ("pids", "memory", "cpu", "devices", "freezer", "blkio", "cpuset")


def cgroup_mounts() -> tuple[dict[str, Path], Path | None]:
    """(v1 controller -> mount point, cgroup2 mount point)."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(rest) < 3:
                continue
            if rest[0] == "cgroup2" and v2 is None:
                v2 = Path(fields[4])
            elif rest[0] == "cgroup":
                for option in rest[2].split(","):
                    v1.setdefault(option, Path(fields[4]))
    return v1, v2


def container_cgroups(pid: int) -> dict[str, str]:
    """controller (or "" for the unified hierarchy) -> path, from /proc/<pid>/cgroup."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> Path:
    v1, v2 = cgroup_mounts()
    paths = container_cgroups(pid)
    if controller in v1 and controller in paths:
        return v1[controller] / paths[controller].lstrip("/") / v1_name
    if v2 is not None and "" in paths and (v2 / paths[""].lstrip("/") / v2_name).exists():
        return v2 / paths[""].lstrip("/") / v2_name
    raise Skipped(f"no {controller} controller found for the container on this host")


def _need_path(ctx: Context) -> None:
    if not ctx.with_cgroups_path:
        raise Skipped("run with --no-cgroups-path")


@case("cgroups.path-absolute", "absolute cgroupsPath is relative to the hierarchy root",
      "config-linux.md#Cgroups Path",
      "An absolute cgroupsPath is taken from the root of each cgroup mount, whatever the caller's cgroup.")
def path_absolute(ctx: Context) -> None:
    _need_path(ctx)
    bundle = ctx.bundle("exec sleep 30")
    pid = ctx.create(bundle)
    wanted = f"{CGROUP_PARENT}/{bundle.cid}"
    paths = container_cgroups(pid)
    v1, _ = cgroup_mounts()
    checked = [c for c in V1_CONTROLLERS if c in v1 and c in paths] or [""]
    wrong = {c or "unified": paths.get(c) for c in checked if paths.get(c) != wanted}
    expect(not wrong, f"cgroup paths differ from {wanted}: {wrong}")


@case("cgroups.path-reused", "the same cgroupsPath gives the same cgroup",
      "config-linux.md#Cgroups Path",
      "Given the same cgroupsPath twice, the runtime attaches to the same place in the hierarchy.")
def path_reused(ctx: Context) -> None:
    _need_path(ctx)
    shared = f"{CGROUP_PARENT}/{ctx.new_id()}-shared"
    seen = []
    for _ in range(2):
        bundle = ctx.bundle("exec sleep 30")
        bundle.linux["cgroupsPath"] = shared
        pid = ctx.create(bundle)
        seen.append(container_cgroups(pid).get("pids", container_cgroups(pid).get("")))
        ctx.runtime.kill(bundle.cid, "KILL")
        ctx.wait_status(bundle.cid, "stopped")
        result = ctx.runtime.delete(bundle.cid)
        expect(result.ok, f"delete: {result.describe()}")
    expect_equal(seen, [shared, shared], "cgroup of the two containers")


@case("cgroups.memory-limit", "memory.limit is applied",
      "config-linux.md#Memory",
      "resources.memory.limit sets the memory limit of the container's cgroup.")
def memory_limit(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.linux["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
    pid = ctx.create(bundle)
    path = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
    expect_equal(path.read_text().strip(), str(64 * 1024 * 1024), str(path))


@case("cgroups.pids-limit", "pids.limit is applied",
      "config-linux.md#PIDs",
      "resources.pids.limit sets the task limit of the container's cgroup.")
def pids_limit(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.linux["resources"] = {"pids": {"limit": 42}}
    pid = ctx.create(bundle)
    path = cgroup_file(pid, "pids", "pids.max", "pids.max")
    expect_equal(path.read_text().strip(), "42", str(path))


@case("cgroups.pids-limit-zero", "pids.limit 0 is a real limit",
      "config-linux.md#PIDs",
      "A pids limit of 0 should be written as 0, not read as 'unset'.")
def pids_limit_zero(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.linux["resources"] = {"pids": {"limit": 0}}
    pid = ctx.create(bundle)
    path = cgroup_file(pid, "pids", "pids.max", "pids.max")
    expect_equal(path.read_text().strip(), "0", str(path))


@case("cgroups.cpu-shares", "cpu.shares is applied",
      "config-linux.md#CPU",
      "resources.cpu.shares sets the relative cpu weight of the container's cgroup.")
def cpu_shares(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.linux["resources"] = {"cpu": {"shares": 512}}
    pid = ctx.create(bundle)
    path = cgroup_file(pid, "cpu", "cpu.shares", "cpu.weight")
    wanted = "512" if path.name == "cpu.shares" else str(1 + ((512 - 2) * 9999) // 262142)
    expect_equal(path.read_text().strip(), wanted, str(path))


@case("cgroups.pids-enforced", "the pids limit is enforced inside",
      "config-linux.md#PIDs",
      "A container whose pids limit is reached cannot start more processes.")
def pids_enforced(ctx: Context) -> None:
    bundle = ctx.bundle("for i in 1 2 3 4; do sleep 2 & done; wait")
    bundle.linux["resources"] = {"pids": {"limit": 3}}
    ctx.run(bundle)
    errors = ctx.errors(bundle)
    expect("Resource temporarily unavailable" in errors or "fork" in errors,
           f"four children under a limit of 3 raised no fork error; stderr {errors.strip()[-200:]!r}")


@case("cgroups.invalid-resource-fails", "a resource the kernel refuses fails create",
      "runtime.md#Create / config-linux.md#Memory",
      "When a resource value cannot be applied (a memory limit of 1 byte), create errors and leaves nothing.")
def invalid_resource(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.linux["resources"] = {"memory": {"limit": 1}}
    result = ctx.try_create(bundle)
    if result.ok:
        raise CheckFailed("create succeeded with a 1-byte memory limit")
    expect(not ctx.exists(bundle.cid), "the container exists after the failed create")
