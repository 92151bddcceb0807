"""Test bundles: a busybox root filesystem built once per run, and a config.json built here.

Each bundle gets its own copy of the base rootfs in which the busybox binary is a hard
link and the applets are symlinks, so a copy costs a few hundred symlink() calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = "/bin/busybox"
SPEC_VERSION = "1.0.2"
CGROUP_PARENT = "/pyoci-conformance"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_BASE_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
              "root", "home", "var", "run", "mnt")
# The capabilities runc's default spec grants: enough for sh, few enough to notice a leak.
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def build_base_rootfs(target: Path) -> Path:
    if not os.access(BUSYBOX, os.X_OK):
        raise RuntimeError(f"{BUSYBOX} is missing: install busybox-static")
    for name in _BASE_DIRS:
        (target / name).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout
    for applet in applets.split():
        link = target / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    (target / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnobody:x:65534:\n")
    return target


def copy_rootfs(base: Path, target: Path) -> None:
    shutil.copytree(base, target, symlinks=True, copy_function=os.link)


def default_config(cid: str, with_cgroups_path: bool = True) -> dict[str, object]:
    """A minimal Linux config, shaped like `runc spec` output but without a terminal."""
    linux: dict[str, object] = {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    if with_cgroups_path:
        linux["cgroupsPath"] = f"{CGROUP_PARENT}/{cid}"
    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", "true"],
            "env": [PATH_ENV],
            "cwd": "/",
            "capabilities": {key: list(DEFAULT_CAPS) for key in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "conformance",
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
        ],
        "linux": linux,
    }


@dataclass
class Bundle:
    """A bundle directory; `config` is edited by the case and written by write()."""

    path: Path
    cid: str
    config: dict[str, object] = field(default_factory=dict)

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def stdout_path(self) -> Path:
        return self.path / "stdout.txt"

    @property
    def stderr_path(self) -> Path:
        return self.path / "stderr.txt"

    @property
    def pid_file(self) -> Path:
        return self.path / "container.pid"

    @property
    def process(self) -> dict[str, object]:
        return self.config["process"]  # type: ignore[return-value]

    @property
    def linux(self) -> dict[str, object]:
        return self.config["linux"]  # type: ignore[return-value]

    @property
    def mounts(self) -> list[dict[str, object]]:
        return self.config["mounts"]  # type: ignore[return-value]

    def set_script(self, script: str) -> None:
        self.process["args"] = ["sh", "-c", script]

    def namespaces(self) -> list[dict[str, str]]:
        return self.linux["namespaces"]  # type: ignore[return-value]

    def set_namespace(self, kind: str, path: str | None = None) -> None:
        """Adds or replaces the namespace of type `kind`."""
        entry = {"type": kind} if path is None else {"type": kind, "path": path}
        kept = [ns for ns in self.namespaces() if ns["type"] != kind]
        self.linux["namespaces"] = kept + [entry]

    def drop_namespace(self, kind: str) -> None:
        self.linux["namespaces"] = [ns for ns in self.namespaces() if ns["type"] != kind]

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
