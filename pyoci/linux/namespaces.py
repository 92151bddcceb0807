"""Namespace types: their clone flags, their names under /proc/<pid>/ns, and setns."""

from __future__ import annotations

import os

from ..errors import PyociError, SyscallError
from . import syscalls as sc

CLONE_FLAG = {
    "pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
PROC_NAME = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
    "user": "user", "cgroup": "cgroup", "time": "time",
}
# The user namespace first: it grants the capabilities to join the others. The
# mount namespace last: after it, the other paths may no longer resolve.
JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


def open_namespace(ns_type: str, path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(f"{ns_type} namespace path {path}: {os.strerror(err.errno or 0).lower()}") from None


def join(ns_type: str, fd: int, path: str) -> None:
    try:
        sc.setns(fd, CLONE_FLAG[ns_type], f"{ns_type} {path}")
    except SyscallError as err:
        if err.errno == 22:  # EINVAL: the file is not a namespace of that type
            raise PyociError(f"{ns_type} namespace path {path}: not a {ns_type} namespace") from None
        raise


def join_namespaces_of(pid: int, skip: tuple[str, ...] = ()) -> None:
    """Enter every namespace of process `pid` that this process is not already in
    (user first, mount last). Every path is opened before the first join: after the
    mount namespace changes, /proc/<pid> may no longer resolve."""
    joins = []
    for ns_type in JOIN_ORDER:
        if ns_type in skip:
            continue
        name = PROC_NAME[ns_type]
        target = f"/proc/{pid}/ns/{name}"
        try:
            if os.stat(target).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
        except FileNotFoundError:
            continue  # a namespace type this kernel does not have
        joins.append((ns_type, target, open_namespace(ns_type, target)))
    for ns_type, target, fd in joins:
        join(ns_type, fd, target)
        os.close(fd)
