"""Which cgroup hierarchies this host mounts, and where the runtime itself sits in them.

Read once per invocation from /proc/self/mountinfo and /proc/self/cgroup: both are a
few kilobytes and need no extra syscalls beyond one open/read each.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError

# The hierarchy key of the cgroup2 tree; v1 hierarchies are keyed by controller name
# (or "name=systemd" for a named hierarchy), as in /proc/self/cgroup.
UNIFIED = ""

# v1 controllers pyoci creates a directory in; anything else mounted is left alone.
KNOWN_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
            "net_cls", "net_prio", "hugetlb", "perf_event", "rdma", "misc", "name=systemd")


# Plain classes, not dataclasses: every pyoci command touches a cgroup, and the light
# ones (state, start, kill) should not import dataclasses and inspect for it.

class Hierarchy:
    def __init__(self, mountpoint: str, mount_root: str, controllers: tuple[str, ...]) -> None:
        self.mountpoint = mountpoint    # where it is mounted, e.g. /sys/fs/cgroup/memory
        self.mount_root = mount_root    # the cgroup path at its top (not "/" inside a cgroupns)
        self.controllers = controllers  # v1: controllers co-mounted here; unified: ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hierarchy) and (self.mountpoint, self.mount_root, self.controllers) \
            == (other.mountpoint, other.mount_root, other.controllers)

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, {self.mount_root!r}, {self.controllers!r})"


class Layout:
    """`mode` is "v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 tree beside them)."""

    def __init__(self, mode: str, v1: dict[str, Hierarchy] | None = None,
                 unified: Hierarchy | None = None) -> None:
        self.mode = mode
        self.v1 = v1 if v1 is not None else {}  # controller -> its hierarchy
        self.unified = unified

    def hierarchy(self, key: str) -> Hierarchy | None:
        return self.unified if key == UNIFIED else self.v1.get(key)


def parse_mountinfo(text: str) -> Layout:
    v1: dict[str, Hierarchy] = {}
    unified: Hierarchy | None = None
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            # The first cgroup2 mount wins; later ones are usually bind mounts of it.
            if unified is None:
                unified = Hierarchy(mountpoint, root, ())
            continue
        options = fields[sep + 3].split(",")
        controllers = tuple(o for o in options if o in KNOWN_V1)
        hierarchy = Hierarchy(mountpoint, root, controllers)
        for c in controllers:
            v1.setdefault(c, hierarchy)
    if v1 and unified is not None:
        mode = "hybrid"
    elif v1:
        mode = "v1"
    elif unified is not None:
        mode = "v2"
    else:
        raise PyociError("cgroups: no cgroup or cgroup2 filesystem is mounted "
                         "(looked in /proc/self/mountinfo)")
    return Layout(mode, v1, unified)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Map hierarchy key -> cgroup path from a /proc/<pid>/cgroup text."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[UNIFIED] = path
            continue
        for c in controllers.split(","):
            paths[c] = path
    return paths


def detect_layout() -> Layout:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
        return parse_proc_cgroup(f.read())


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 1 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def join_under(mountpoint: str, mount_root: str, cgroup_path: str) -> str:
    """Directory of cgroup `cgroup_path` (as the kernel names it) on a mount showing `mount_root`."""
    rel = cgroup_path
    if mount_root != "/" and (rel == mount_root or rel.startswith(mount_root + "/")):
        rel = rel[len(mount_root):]
    rel = rel.strip("/")
    return os.path.join(mountpoint, rel) if rel else mountpoint
