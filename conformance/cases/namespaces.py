"""config-linux.md namespaces, user namespace mappings and time offsets.

Namespace identity is compared from the host through /proc/<pid>/ns/<kind> inodes. The
runtime's namespaces are taken to be the suite's own, except the mount namespace, which a
wrapper (see runtimes/crun-hybrid) may change; no case compares mount namespaces with ours.
"""

from __future__ import annotations

import os

from conformance.context import Context, ns_inode
from conformance.outcome import expect, expect_equal
from conformance.registry import case

PROC_NAMES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
              "cgroup": "cgroup", "user": "user", "time": "time"}


def _new_namespace(ctx: Context, kind: str) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.set_namespace(kind)
    pid = ctx.create(bundle)
    name = PROC_NAMES[kind]
    expect(ns_inode(pid, name) != ns_inode("self", name), f"the container is in the runtime's {kind} namespace")


@case("namespaces.new-pid", "a new pid namespace",
      "config-linux.md#Namespaces",
      "A pid entry without path puts the container in a new pid namespace.")
def new_pid(ctx: Context) -> None:
    _new_namespace(ctx, "pid")


@case("namespaces.pid-is-1", "the program is pid 1 of its pid namespace",
      "config-linux.md#Namespaces",
      "In a new pid namespace, the container process sees only its own processes and is pid 1.")
def pid_is_1(ctx: Context) -> None:
    bundle = ctx.bundle("echo $$ /proc/[0-9]*")
    expect_equal(ctx.run(bundle).split(), ["1", "/proc/1"], "pid of the shell, then the processes it sees")


@case("namespaces.new-network", "a new network namespace",
      "config-linux.md#Namespaces",
      "A network entry without path puts the container in a new network namespace.")
def new_network(ctx: Context) -> None:
    _new_namespace(ctx, "network")


@case("namespaces.new-ipc", "a new ipc namespace",
      "config-linux.md#Namespaces",
      "An ipc entry without path puts the container in a new ipc namespace.")
def new_ipc(ctx: Context) -> None:
    _new_namespace(ctx, "ipc")


@case("namespaces.new-uts", "a new uts namespace",
      "config-linux.md#Namespaces",
      "A uts entry without path puts the container in a new uts namespace.")
def new_uts(ctx: Context) -> None:
    _new_namespace(ctx, "uts")


@case("namespaces.new-mount", "a new mount namespace",
      "config-linux.md#Namespaces",
      "A mount entry without path puts the container in a new mount namespace.")
def new_mount(ctx: Context) -> None:
    _new_namespace(ctx, "mount")


@case("namespaces.new-cgroup", "a new cgroup namespace",
      "config-linux.md#Namespaces",
      "A cgroup entry without path puts the container in a new cgroup namespace.")
def new_cgroup(ctx: Context) -> None:
    _new_namespace(ctx, "cgroup")


@case("namespaces.inherit", "namespaces not listed are inherited",
      "config-linux.md#Namespaces",
      "For a type missing from namespaces, the container stays in the runtime's namespace of that type.")
def inherit(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    for kind in ("network", "ipc", "uts"):
        bundle.drop_namespace(kind)
    bundle.config.pop("hostname", None)
    pid = ctx.create(bundle)
    differ = [k for k in ("net", "ipc", "uts") if ns_inode(pid, k) != ns_inode("self", k)]
    expect(not differ, f"the container has its own {differ} namespace(s)")


@case("namespaces.join-path", "joining namespaces by path",
      "config-linux.md#Namespaces",
      "An entry with a path places the container in the namespace that path refers to.")
def join_path(ctx: Context) -> None:
    first = ctx.bundle("exec sleep 30")
    first_pid = ctx.create(first)
    second = ctx.bundle("exec sleep 30")
    for kind in ("network", "ipc", "uts"):
        second.set_namespace(kind, f"/proc/{first_pid}/ns/{PROC_NAMES[kind]}")
    second.config.pop("hostname", None)
    second_pid = ctx.create(second)
    differ = [k for k in ("net", "ipc", "uts") if ns_inode(second_pid, k) != ns_inode(first_pid, k)]
    expect(not differ, f"the second container did not join the first one's {differ} namespace(s)")


@case("namespaces.path-wrong-type", "a path of another namespace type is refused",
      "config-linux.md#Namespaces",
      "create errors when a path refers to a namespace whose type is not the entry's type.")
def path_wrong_type(ctx: Context) -> None:
    first = ctx.bundle("exec sleep 30")
    first_pid = ctx.create(first)
    second = ctx.bundle("true")
    second.set_namespace("network", f"/proc/{first_pid}/ns/uts")
    expect(not ctx.try_create(second).ok, "create accepted a uts namespace path for a network entry")


@case("namespaces.path-relative", "a relative namespace path is refused",
      "config-linux.md#Namespaces / config.md#Valid values",
      "A namespace path must be absolute; a relative one makes create error.")
def path_relative(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.set_namespace("network", f"proc/{os.getpid()}/ns/net")
    expect(not ctx.try_create(bundle).ok, "create accepted a relative namespace path")


@case("namespaces.duplicate", "duplicated namespace types are refused",
      "config-linux.md#Namespaces",
      "Two entries of the same namespace type make create error.")
def duplicate(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.linux["namespaces"] = bundle.namespaces() + [{"type": "uts"}]
    expect(not ctx.try_create(bundle).ok, "create accepted two uts entries")


MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@case("namespaces.user-mappings", "user namespace with uid/gid mappings",
      "config-linux.md#User namespace mappings",
      "With a user namespace, uidMappings and gidMappings become the container's uid_map and gid_map.")
def user_mappings(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g")
    bundle.set_namespace("user")
    bundle.linux["uidMappings"] = MAPPING
    bundle.linux["gidMappings"] = MAPPING
    lines = [line.split() for line in ctx.run(bundle).splitlines()]
    expect_equal(lines, [["0", "100000", "65536"], ["0", "100000", "65536"], ["0"], ["0"]],
                 "uid_map, gid_map, id -u, id -g")


@case("namespaces.user-host-ids", "container root is the mapped host id",
      "config-linux.md#User namespace mappings",
      "Seen from the host, the container's root runs as the host id its mapping names.")
def user_host_ids(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    bundle.set_namespace("user")
    bundle.linux["uidMappings"] = MAPPING
    bundle.linux["gidMappings"] = MAPPING
    pid = ctx.create(bundle)
    expect(ns_inode(pid, "user") != ns_inode("self", "user"), "the container is in the host user namespace")
    stat = os.stat(f"/proc/{pid}")
    expect_equal((stat.st_uid, stat.st_gid), (100000, 100000), "host owner of the container process")


@case("namespaces.user-no-chown", "mappings do not chown the rootfs",
      "config-linux.md#User namespace mappings",
      "The runtime should not change the ownership of the rootfs to realize the mapping.")
def user_no_chown(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.set_namespace("user")
    bundle.linux["uidMappings"] = MAPPING
    bundle.linux["gidMappings"] = MAPPING
    ctx.run(bundle)
    changed = [str(p.relative_to(bundle.rootfs)) for p in (bundle.rootfs, bundle.rootfs / "bin" / "busybox",
                                                           bundle.rootfs / "etc" / "passwd")
               if os.lstat(p).st_uid != 0]
    expect(not changed, f"ownership changed on {changed}")


@case("namespaces.time-offsets", "time namespace with offsets",
      "config-linux.md#Offset for Time Namespace",
      "With a time namespace, timeOffsets set the container's monotonic and boottime clock offsets.")
def time_offsets(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/timens_offsets")
    bundle.set_namespace("time")
    bundle.linux["timeOffsets"] = {"monotonic": {"secs": 864000, "nanosecs": 0},
                                   "boottime": {"secs": 1728000, "nanosecs": 5}}
    seen = {line.split()[0]: line.split()[1:] for line in ctx.run(bundle).splitlines() if line.strip()}
    expect_equal(seen, {"monotonic": ["864000", "0"], "boottime": ["1728000", "5"]}, "timens_offsets")
