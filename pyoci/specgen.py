"""The default config.json `pyoci spec` writes: runc's defaults, with pyoci's name."""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
           "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
           "/sys/firmware", "/sys/devices/virtual/powercap"]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_config(rootless: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {name: list(_CAPS) for name in
                             ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyoci",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(_MASKED),
            "readonlyPaths": list(_READONLY),
        },
    }
    if rootless:
        _make_rootless(config)
    return config


def _make_rootless(config: dict[str, Any]) -> None:
    """A config an unprivileged user can run (runc's `spec --rootless` changes): its own
    uid and gid mapped to root, no network namespace (it could not be configured),
    nothing mounted under /sys but the host's /sys bound recursively (sysfs belongs to
    the network namespace), no uid=/gid= mount options naming unmapped ids, and no
    cgroup limits (there may be no delegated cgroup to put them in)."""
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    del linux["resources"]
    mounts = []
    for m in config["mounts"]:
        if m["destination"] == "/sys" or m["destination"].startswith("/sys/"):
            continue
        if "options" in m:
            m = dict(m, options=[o for o in m["options"]
                                 if not o.startswith(("uid=", "gid="))])
        mounts.append(m)
    mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    config["mounts"] = mounts
