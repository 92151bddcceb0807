"""Container cgroups on v1, v2 and hybrid hosts (cgroupfs driver).

Path rules follow runc's cgroupfs driver: an absolute `linux.cgroupsPath` is taken from the
root of every hierarchy; a relative one, and the default (the container id) when it is
absent, from the runtime's own cgroup in each hierarchy (/proc/self/cgroup). The systemd
driver (`--systemd-cgroup`, "slice:prefix:name") is refused with an explanation.

Imported on every create: this module and `manager` use only the standard library, and
resource parsing, stats and eBPF are imported when first used.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from pyoci.cgroups.layout import Layout, detect_layout, own_cgroups
from pyoci.cgroups.manager import Cgroup
from pyoci.errors import PyociError

__all__ = ["Cgroup", "cgroup_for", "cgroup_from_state", "Layout"]


def cgroup_for(container_id: str, cgroups_path: str | None, *, systemd: bool = False,
               rootless: bool = False, layout: Layout | None = None,
               own: dict[str, str] | None = None) -> Cgroup:
    """Decide the container's cgroup directories; nothing is created yet.

    `layout` and `own` (hierarchy key -> the runtime's cgroup path) default to this
    host's; tests pass a layout over a temporary tree.
    """
    if systemd:
        raise PyociError(_systemd_refusal(cgroups_path, container_id))
    if cgroups_path and not cgroups_path.startswith("/") and cgroups_path.count(":") == 2:
        raise PyociError(f"linux.cgroupsPath {cgroups_path!r} is in systemd's "
                         f"\"slice:prefix:name\" form, which needs --systemd-cgroup; with the "
                         f"cgroupfs driver give a path such as /pyoci/{container_id}")
    from pyoci.cgroups.manager import resolve_dirs
    layout = layout or detect_layout()
    if own is None:
        own = own_cgroups() if not (cgroups_path or "").startswith("/") else {}
    dirs, tops = resolve_dirs(layout, container_id, cgroups_path, own)
    return Cgroup(container_id, layout.mode, dirs, tops, rootless=rootless)


def cgroup_from_state(saved: dict[str, Any], container_id: str = "") -> Cgroup:
    """The Cgroup a previous command described with `to_state()`."""
    return Cgroup.from_state(container_id, saved)


def _systemd_refusal(cgroups_path: str | None, container_id: str) -> str:
    running = os.path.isdir("/run/systemd/system")
    why = ("pyoci does not implement the systemd cgroup driver (transient units over D-Bus)"
           if running else
           "that needs systemd as the init system to create a transient unit, and systemd is "
           "not running on this host (/run/systemd/system is missing)")
    return (f"--systemd-cgroup with cgroupsPath {cgroups_path or ':pyoci:' + container_id!r}: "
            f"{why}; run without --systemd-cgroup and use a cgroupfs path such as "
            f"/pyoci/{container_id}")
