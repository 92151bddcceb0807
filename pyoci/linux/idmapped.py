"""Idmapped bind mounts: a detached copy of a host directory whose owners are shifted.

The kernel shows an idmapped mount's files through a user namespace's map: a file whose
on-disk owner is `containerID` of a mapping appears owned by `hostID`, and writes go
back the other way. The namespace only carries the map, so a short-lived helper process
creates it and is reaped once its namespace is open.

Order of the work (runc 1.2 does the same split):
  host side, with the host's privileges:  open_tree(OPEN_TREE_CLONE) the source, then
      mount_setattr(MOUNT_ATTR_IDMAP, helper namespace fd) on the detached tree;
  container side, in the init:            move_mount the detached tree onto its target.
The detached tree belongs to no mount namespace until it is moved, so nothing has to be
undone on the host if create fails: closing the descriptor drops it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from collections.abc import Sequence

from ..errors import PyociError, SyscallError
from ..spec import IdMapping
from . import syscalls as sc

_libc = ctypes.CDLL(None, use_errno=True)

# Numbers from 424 up are the same on every architecture.
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_NO_AUTOMOUNT = 0x800
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x100000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _errno() -> int:
    return ctypes.get_errno()


def open_tree_clone(source: str, recursive: bool) -> int:
    """A detached copy of the mount tree at `source` (a bind mount not yet attached)."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_NO_AUTOMOUNT
    if recursive:
        flags |= AT_RECURSIVE
    fd = _libc.syscall(_SYS_OPEN_TREE, sc.AT_FDCWD, os.fsencode(source), flags)
    if fd < 0:
        raise SyscallError(f"open_tree {source}", _errno())
    return fd


def set_idmap(tree_fd: int, userns_fd: int, recursive: bool, what: str) -> None:
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    if _libc.syscall(_SYS_MOUNT_SETATTR, tree_fd, b"", flags, ctypes.byref(attr),
                     ctypes.sizeof(attr)) != 0:
        err = _errno()
        hint = ""
        if err == errno.EINVAL:
            hint = ": the file system does not support idmapped mounts, or the map is invalid"
        elif err == errno.EPERM:
            hint = ": needs CAP_SYS_ADMIN over the file system (root on the host)"
        failure = SyscallError(f"idmap {what}", err)
        failure.message += hint
        raise failure


def move_into_place(tree_fd: int, target: str) -> None:
    if _libc.syscall(_SYS_MOVE_MOUNT, tree_fd, b"", sc.AT_FDCWD, os.fsencode(target),
                     MOVE_MOUNT_F_EMPTY_PATH) != 0:
        raise SyscallError(f"move idmapped mount onto {target}", _errno())


def _map_text(mappings: Sequence[IdMapping]) -> bytes:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings).encode()


def userns_with_maps(uid_mappings: Sequence[IdMapping],
                     gid_mappings: Sequence[IdMapping]) -> int:
    """An fd of a new user namespace carrying these maps, made by a helper child.

    The caller must be allowed to write arbitrary maps (root on the host): an idmapped
    mount of a host file system needs that privilege anyway.
    """
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(ready_r)
            os.close(hold_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)  # until the parent has opened the namespace
        except BaseException:
            status = 1
        os._exit(status)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise PyociError("idmapped mount: the helper could not create a user namespace")
        for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            try:
                with open(f"/proc/{pid}/{name}", "wb", buffering=0) as f:
                    f.write(_map_text(mappings))
            except OSError as err:
                raise PyociError(f"idmapped mount: write {name} of the helper namespace: "
                                 f"{os.strerror(err.errno or 0).lower()}") from None
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def idmapped_tree(source: str, uid_mappings: Sequence[IdMapping],
                  gid_mappings: Sequence[IdMapping], recursive: bool) -> int:
    """A detached, idmapped copy of `source`, ready for move_into_place()."""
    userns_fd = userns_with_maps(uid_mappings, gid_mappings)
    try:
        tree = open_tree_clone(source, recursive)
        try:
            set_idmap(tree, userns_fd, recursive, source)
        except BaseException:
            os.close(tree)
            raise
        return tree
    finally:
        os.close(userns_fd)


def supported() -> bool:
    """Whether this process can make idmapped bind mounts here: tried, not guessed.

    For `features` (mountExtensions.idmap): a throwaway idmapped clone of /tmp.
    """
    if os.geteuid() != 0:
        return False
    one = [IdMapping(container_id=0, host_id=0, size=1)]
    shifted = [IdMapping(container_id=0, host_id=1, size=1)]
    try:
        os.close(idmapped_tree("/tmp", shifted, one, recursive=False))
    except (PyociError, OSError):
        return False
    return True
