"""The kernel calls pyoci makes, as thin ctypes wrappers.

Each wrapper raises SyscallError naming the step in the user's terms ("mount proc on
/proc"), so a failure deep in the container's init reads as one clear line.
Only what the os module lacks on Python 3.11 is here.
"""

from __future__ import annotations

import ctypes
import os


from ..errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

# Syscalls without a glibc 2.36 wrapper. Numbers from 424 up are shared by every
# architecture; older ones differ.
_ARCH_NUMBERS = {
    "x86_64": {"pivot_root": 155, "seccomp": 317},
    "aarch64": {"pivot_root": 41, "seccomp": 277},
}
_SYS_CLOSE_RANGE = 436
_SYS_OPENAT2 = 437
_SYS_MOUNT_SETATTR = 442

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

CLOSE_RANGE_CLOEXEC = 1 << 2


def _fail(step: str) -> SyscallError:
    return SyscallError(step, ctypes.get_errno())


def _syscall_number(name: str) -> int:
    try:
        return _ARCH_NUMBERS[os.uname().machine][name]
    except KeyError:
        raise SyscallError(f"{name} on {os.uname().machine}", 38) from None  # ENOSYS


def _b(path: str | None) -> bytes | None:
    return os.fsencode(path) if path is not None else None


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise _fail("unshare namespaces")


def setns(fd: int, nstype: int, what: str) -> None:
    if _libc.setns(fd, nstype) != 0:
        raise _fail(f"join namespace {what}")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None, step: str | None = None) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)) != 0:
        raise _fail(step or f"mount {source or fstype or ''} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail(f"unmount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(_syscall_number("pivot_root"), _b(new_root), _b(put_old)) != 0:
        raise _fail(f"pivot_root to {new_root}")


def sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(raw, len(raw)) != 0:
        raise _fail(f"set hostname {name!r}")


def setdomainname(name: str) -> None:
    raw = name.encode()
    if _libc.setdomainname(raw, len(raw)) != 0:
        raise _fail(f"set domainname {name!r}")


def prctl(option: int, arg2: int = 0, step: str = "prctl") -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg2), 0, 0, 0) != 0:
        raise _fail(step)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


SECCOMP_SET_MODE_FILTER = 1
_BPF_INSTRUCTION_SIZE = 8  # struct sock_filter


def seccomp_set_filter(program: bytes, flags: int) -> None:
    """Install a compiled seccomp BPF program (struct sock_filter[]) on this thread."""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // _BPF_INSTRUCTION_SIZE, ctypes.addressof(buf))
    if _libc.syscall(_syscall_number("seccomp"), SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags),
                     ctypes.byref(fprog)) != 0:
        raise _fail("load seccomp filter")


def close_range(first: int, last: int, flags: int = 0) -> None:
    if _libc.syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), flags) != 0:
        raise _fail("close inherited descriptors")


def close_fds_except(keep: set[int]) -> None:
    """Close every descriptor but `keep`, in as few calls as the gaps allow."""
    first = 0
    for fd in sorted(keep):
        if fd > first:
            close_range(first, fd - 1)
        first = fd + 1
    close_range(first, 0xFFFFFFFF)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x100000


def mount_setattr(path: str, attr_set: int, attr_clear: int, recursive: bool = True,
                  userns_fd: int = 0) -> None:
    attr = _MountAttr(attr_set, attr_clear, 0, userns_fd)
    flags = AT_RECURSIVE if recursive else 0
    if _libc.syscall(_SYS_MOUNT_SETATTR, AT_FDCWD, _b(path), flags, ctypes.byref(attr),
                     ctypes.sizeof(attr)) != 0:
        raise _fail(f"set mount attributes of {path}")
