"""A fresh session keyring per container, named `_ses.<id>` like runc's.

Without it every container would share the caller's session keyring (and its keys).
keyctl has no glibc wrapper: it goes through syscall(2).
"""

from __future__ import annotations

import ctypes
import errno
import os

from ..errors import SyscallError

_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
_KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYCTL_SETPERM = 5
_KEYCTL_DESCRIBE = 6
_KEY_USR_SEARCH = 0x00080000  # lets the container's user search it, as runc sets


def _keyctl(*args: int | bytes | None) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = _SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        raise SyscallError("keyctl on this architecture", errno.ENOSYS)
    c_args = [ctypes.c_long(a) if isinstance(a, int) else ctypes.c_char_p(a) for a in args]
    return libc.syscall(ctypes.c_long(number), *c_args)


def join_new_session_keyring(container_id: str) -> None:
    """Join a new session keyring; a kernel without keyrings (ENOSYS) is fine."""
    key = _keyctl(_KEYCTL_JOIN_SESSION_KEYRING, f"_ses.{container_id}".encode())
    if key < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return
        raise SyscallError("join a new session keyring", err)
    buf = ctypes.create_string_buffer(512)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    n = libc.syscall(ctypes.c_long(_SYS_KEYCTL[os.uname().machine]),
                     ctypes.c_long(_KEYCTL_DESCRIBE), ctypes.c_long(key), buf,
                     ctypes.c_long(len(buf)))
    if n < 0:
        raise SyscallError("describe the session keyring", ctypes.get_errno())
    # "type;uid;gid;perm;description"
    perm = int(buf.value.decode().split(";")[3], 16)
    if _keyctl(_KEYCTL_SETPERM, key, perm | _KEY_USR_SEARCH) < 0:
        raise SyscallError("set the session keyring's permissions", ctypes.get_errno())
