"""Terminals: the container's pty and the console-socket protocol engines speak.

The pty is allocated inside the container, from its own devpts instance, after the
root switch (so the pts number and owner are the container's). Its master leaves the
container over a unix socket in a single sendmsg, as runc sends it: a non-empty name
as data and exactly one descriptor in one SCM_RIGHTS message. The receiver is an
engine's console socket, or pyoci itself (`run`/`exec -t` at a shell), which then
relays the master to its own terminal.
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct

from .errors import PyociError, SyscallError
from .spec import ConsoleSize

# asm-generic ioctl numbers (x86_64, aarch64, ...)
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441

# sun_path is 108 bytes including the terminating NUL.
_SUN_PATH_MAX = 107


# --- the socket ---------------------------------------------------------------------

def connect_socket(path: str) -> socket.socket:
    """Connect to the caller's console socket; paths too long for sun_path go through
    /proc/self/fd/<dir fd>/<name>."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            sock.connect(path)
        else:
            parent, name = os.path.split(os.path.abspath(path))
            dirfd = os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{dirfd}/{name}")
            finally:
                os.close(dirfd)
    except OSError as err:
        sock.close()
        raise PyociError(f"connect to console socket {path}: "
                         f"{os.strerror(err.errno or 0).lower()}") from None
    return sock


def send_master(sock_fd: int, name: str, master: int) -> None:
    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        try:
            sock.sendmsg([name.encode() or b"pty"],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
        except OSError as err:
            raise SyscallError("send the pty master over the console socket", err.errno or 0) from None


def recv_master(sock: socket.socket) -> int:
    """The receiving side, for pyoci's own relay and for tests' console servers."""
    fds = array.array("i")
    data, ancillary, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise PyociError(f"console: expected one pty master, got {len(fds)} descriptors"
                         f" (data {data!r})")
    return fds[0]


# --- the pty, inside the container --------------------------------------------------

def open_pty() -> tuple[int, int, str]:
    """(master, peer, peer name) from the devpts behind this mount namespace's /dev/ptmx.
    The peer is taken from the master (TIOCGPTPEER), never by path: a path could be
    swapped by the container."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise SyscallError("open /dev/ptmx in the container", err.errno or 0) from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        peer = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        os.close(master)
        raise SyscallError("set up the container's pty", err.errno or 0) from None
    return master, peer, f"/dev/pts/{number}"


def set_size(fd: int, size: ConsoleSize | None) -> None:
    if size is None or not (size.height and size.width):
        return
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


def copy_size(source: int, target: int) -> None:
    """The window size of our terminal onto the container's (SIGWINCH)."""
    try:
        fcntl.ioctl(target, TIOCSWINSZ, fcntl.ioctl(source, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def attach(peer: int, uid: int, gid: int) -> None:
    """Make the peer this process's controlling terminal and its stdio, owned by the
    user the program runs as."""
    try:
        os.fchown(peer, uid, gid)
    except OSError as err:
        raise SyscallError("chown the container's pty", err.errno or 0) from None
    os.setsid()
    try:
        fcntl.ioctl(peer, TIOCSCTTY, 0)
    except OSError as err:
        raise SyscallError("make the pty the controlling terminal", err.errno or 0) from None
    for fd in (0, 1, 2):
        os.dup2(peer, fd)
    os.close(peer)


def bind_console(peer_name: str) -> None:
    """/dev/console of the container shows its pty, as for runc's init."""
    from .linux import syscalls as sc

    if not os.path.lexists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    sc.mount(peer_name, "/dev/console", None, sc.MS_BIND, step="bind the pty on /dev/console")


def setup_terminal(console_fd: int, size: ConsoleSize | None, uid: int, gid: int,
                   console: bool) -> None:
    """Everything a terminal process needs, called in the container before execve:
    allocate, size, hand the master over, take the peer as stdio and ctty."""
    master, peer, name = open_pty()
    try:
        set_size(master, size)
        if console:
            bind_console(name)
        send_master(console_fd, name, master)
    finally:
        os.close(master)
        os.close(console_fd)
    attach(peer, uid, gid)
