"""Turning a mount's `options` list into mount(2) flags, propagation and data."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import syscalls as sc

# option -> (flag, set?) ; "set" False means the option clears the flag.
_FLAGS: dict[str, tuple[int, bool]] = {
    "ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False),
    "nosuid": (sc.MS_NOSUID, True), "suid": (sc.MS_NOSUID, False),
    "nodev": (sc.MS_NODEV, True), "dev": (sc.MS_NODEV, False),
    "noexec": (sc.MS_NOEXEC, True), "exec": (sc.MS_NOEXEC, False),
    "sync": (sc.MS_SYNCHRONOUS, True), "async": (sc.MS_SYNCHRONOUS, False),
    "dirsync": (sc.MS_DIRSYNC, True),
    "remount": (sc.MS_REMOUNT, True),
    "mand": (sc.MS_MANDLOCK, True), "nomand": (sc.MS_MANDLOCK, False),
    "atime": (sc.MS_NOATIME, False), "noatime": (sc.MS_NOATIME, True),
    "diratime": (sc.MS_NODIRATIME, False), "nodiratime": (sc.MS_NODIRATIME, True),
    "relatime": (sc.MS_RELATIME, True), "norelatime": (sc.MS_RELATIME, False),
    "strictatime": (sc.MS_STRICTATIME, True), "nostrictatime": (sc.MS_STRICTATIME, False),
    "lazytime": (sc.MS_LAZYTIME, True), "nolazytime": (sc.MS_LAZYTIME, False),
    "symfollow": (sc.MS_NOSYMFOLLOW, False), "nosymfollow": (sc.MS_NOSYMFOLLOW, True),
    "bind": (sc.MS_BIND, True),
    "rbind": (sc.MS_BIND | sc.MS_REC, True),
}

PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# Recursive attributes applied with mount_setattr(AT_RECURSIVE) after the mount.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

RECURSIVE: dict[str, tuple[int, bool]] = {
    "rro": (MOUNT_ATTR_RDONLY, True), "rrw": (MOUNT_ATTR_RDONLY, False),
    "rnosuid": (MOUNT_ATTR_NOSUID, True), "rsuid": (MOUNT_ATTR_NOSUID, False),
    "rnodev": (MOUNT_ATTR_NODEV, True), "rdev": (MOUNT_ATTR_NODEV, False),
    "rnoexec": (MOUNT_ATTR_NOEXEC, True), "rexec": (MOUNT_ATTR_NOEXEC, False),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, True), "rdiratime": (MOUNT_ATTR_NODIRATIME, False),
    "rnoatime": (MOUNT_ATTR_NOATIME, True), "ratime": (MOUNT_ATTR_NOATIME, False),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, True),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, True), "rsymfollow": (MOUNT_ATTR_NOSYMFOLLOW, False),
}

# Options that only steer pyoci, never reach the kernel.
_IGNORED = {"defaults", "auto", "noauto", "user", "nouser", "_netdev", "tmpcopyup", "idmap", "ridmap"}


@dataclass
class MountOptions:
    """A mount's options as mount(2) takes them."""

    flags: int = 0
    propagation: list[int] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    attr_set: int = 0
    attr_clear: int = 0

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) if self.data else None


def parse(options: list[str]) -> MountOptions:
    parsed = MountOptions()
    for opt in options:
        if opt in _FLAGS:
            flag, on = _FLAGS[opt]
            parsed.flags = parsed.flags | flag if on else parsed.flags & ~flag
        elif opt in PROPAGATION:
            parsed.propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            attr, on = RECURSIVE[opt]
            if on:
                parsed.attr_set |= attr
            else:
                parsed.attr_clear |= attr
        elif opt not in _IGNORED:
            parsed.data.append(opt)
    return parsed
