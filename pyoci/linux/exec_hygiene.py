"""What the container's program must not inherit from the Python runtime: signal
dispositions, the blocked-signal mask and descriptors; and the dumpable flag of the
init while it holds host resources.

CPython ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across execve:
`yes | head -1` would never end. Handlers are reset by execve itself, ignores and the
mask are not, so both are reset here.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal

from ..errors import SyscallError

_SYS_CLOSE_RANGE = 436  # the same number on every architecture
_CLOSE_RANGE_CLOEXEC = 1 << 2
_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3
_MAX_FD = 0xFFFFFFFF


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def reset_signals() -> None:
    """Every disposition back to SIG_DFL and an empty signal mask."""
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            # The two realtime signals glibc keeps for itself cannot be set.
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _close_range(first: int, flags: int) -> bool:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(_SYS_CLOSE_RANGE), ctypes.c_uint(first),
                      ctypes.c_uint(_MAX_FD), ctypes.c_uint(flags))
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        return False
    raise SyscallError(f"close_range({first}, ~0)", err)


def _open_fds() -> list[int]:
    return [int(name) for name in os.listdir("/proc/self/fd")]


def cloexec_from(first: int) -> None:
    """Mark every descriptor >= first close-on-exec: the program gets only those below,
    while the init can still use its own until execve (the exec fifo, the sync socket)."""
    if _close_range(first, _CLOSE_RANGE_CLOEXEC):
        return
    for fd in _open_fds():
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def close_from(first: int) -> None:
    """Close every descriptor >= first now."""
    if _close_range(first, 0):
        return
    os.closerange(first, max(_open_fds() + [first]) + 1)


def make_inheritable(fds: range | list[int]) -> None:
    """Clear close-on-exec on the descriptors the program is given (--preserve-fds,
    LISTEN_FDS): Python opens everything close-on-exec."""
    for fd in fds:
        try:
            os.set_inheritable(fd, True)
        except OSError as e:
            raise SyscallError(f"preserve fd {fd}", e.errno or errno.EBADF) from None


def set_dumpable(dumpable: bool) -> None:
    """Non-dumpable also hides /proc/<pid> internals (exe, fd, mem) from the container's
    processes; the kernel resets it at execve for a normal binary."""
    libc = _libc()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise SyscallError("set dumpable", ctypes.get_errno())


def is_dumpable() -> bool:
    libc = _libc()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    return libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 1


def prepare_exec(preserve_fds: int = 0) -> None:
    """The last step before execve: default signals, empty mask, and only stdio plus the
    preserved descriptors 3..3+preserve_fds-1 left open across exec."""
    reset_signals()
    make_inheritable(range(3, 3 + preserve_fds))
    cloexec_from(3 + preserve_fds)
