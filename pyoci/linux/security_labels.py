"""AppArmor profile and SELinux labels of the container process, the way runc 1.1 does it.

Measured with runc 1.1.5 on a host with neither module:
- process.apparmorProfile: runc writes "exec <profile>" to the AppArmor attribute file
  anyway and fails the start with the kernel's EINVAL; pyoci does the same, so a profile
  is never silently dropped.
- process.selinuxLabel: runc refuses the config before creating anything ("selinux label
  is specified in config, but selinux is disabled or not supported").
- linux.mountLabel: runc adds context="<label>" to the data of the mounts it labels and
  the kernel refuses the first of them (the /dev tmpfs) with EINVAL. `mount_label_data`
  builds that data; the rootfs code passes it to mount(2).
"""

from __future__ import annotations

import errno
import os

from ..errors import PyociError, SyscallError

_APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
_SELINUX_MOUNT = "/sys/fs/selinux"
# Mount types runc mounts without the label (proc and sysfs cannot take it; mqueue is
# labelled afterwards through the file, which needs SELinux).
_UNLABELLED_TYPES = {"proc", "sysfs", "mqueue", "bind", "cgroup", "cgroup2"}


def apparmor_enabled() -> bool:
    try:
        with open(_APPARMOR_ENABLED) as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def apply_apparmor_profile(profile: str | None) -> None:
    """Ask for `profile` on the next execve; EINVAL from the kernel when AppArmor is off."""
    if not profile:
        return
    # Only the task itself may change its AppArmor attributes, hence /proc/self.
    path = "/proc/self/attr/apparmor/exec"
    if not os.path.exists(path):
        path = "/proc/self/attr/exec"
    try:
        with open(path, "w") as f:
            f.write(f"exec {profile}")
    except OSError as e:
        hint = "" if apparmor_enabled() else " (AppArmor is not enabled on this host)"
        raise SyscallError(f"apply apparmor profile {profile!r}: write {path}{hint}",
                           e.errno or errno.EINVAL) from None


def selinux_enabled() -> bool:
    try:
        with open("/proc/self/mounts") as f:
            if not any(line.split()[2:3] == ["selinuxfs"] for line in f):
                return False
    except OSError:
        return False
    return os.path.exists(os.path.join(_SELINUX_MOUNT, "enforce"))


def check_selinux_label(label: str | None, field: str = "process.selinuxLabel") -> None:
    """Refuse a label on a host without SELinux: call it before creating anything."""
    if label and not selinux_enabled():
        raise PyociError(f"{field}: selinux label is specified in config, but selinux is "
                         "disabled or not supported")


def apply_selinux_label(label: str | None) -> None:
    """Label the process's next execve with `label`."""
    if not label:
        return
    check_selinux_label(label)
    path = "/proc/thread-self/attr/exec"
    try:
        with open(path, "w") as f:
            f.write(label)
    except OSError as e:
        raise SyscallError(f"set selinux exec label {label!r}: write {path}",
                           e.errno or errno.EINVAL) from None


def mount_label_data(fstype: str | None, data: str, mount_label: str | None) -> str:
    """Mount data with the SELinux context option added where runc adds it."""
    if not mount_label or (fstype or "bind") in _UNLABELLED_TYPES:
        return data
    option = f'context="{mount_label}"'
    return f"{data},{option}" if data else option
