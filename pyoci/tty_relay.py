"""pyoci's own end of a container terminal: `run` or `exec -t` without --console-socket.

One poll loop, no threads: our stdin goes to the pty master, the master's output to
our stdout; our terminal is put in raw mode (the container's pty does the line
discipline) and restored on the way out; SIGWINCH copies our window size onto the
container's; every other signal is passed on to the program; children are reaped
(we are a subreaper) until the program itself exits.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import termios
import tty

from . import console

_CHUNK = 65536


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


class _Signals:
    """Handlers that forward to `pid`; the wakeup fd makes poll return on any signal."""

    def __init__(self, pid: int, master: int) -> None:
        self.pid = pid
        self.master = master
        self.read_end, self.write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous_wakeup = signal.set_wakeup_fd(self.write_end, warn_on_full_buffer=False)
        for sig in signal.valid_signals():
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            try:
                signal.signal(sig, self._handle)
            except (OSError, ValueError):
                pass

    def _handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGCHLD:
            return
        if signum == signal.SIGWINCH:
            if os.isatty(0):
                console.copy_size(0, self.master)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def drain(self) -> None:
        try:
            while os.read(self.read_end, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous_wakeup)
        os.close(self.read_end)
        os.close(self.write_end)


def _reap(pid: int) -> int | None:
    """Reap every exited child; the exit status of `pid` once it is among them."""
    status = None
    while True:
        try:
            child, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status if status is not None else 255
        if child == 0:
            return status
        if child == pid:
            code = os.waitstatus_to_exitcode(raw)
            status = 128 - code if code < 0 else code


def relay(master: int, pid: int) -> int:
    """Relay until `pid` exits and the pty has nothing more to say; its exit status."""
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)
        console.copy_size(0, master)
    signals = _Signals(pid, master)
    os.set_blocking(master, False)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(signals.read_end, select.POLLIN)
    stdin_open = True
    try:
        poller.register(0, select.POLLIN)
    except OSError:
        stdin_open = False
    status: int | None = None
    try:
        while True:
            status = status if status is not None else _reap(pid)
            if status is not None:
                _drain(master)
                return status
            for fd, _events in poller.poll():
                if fd == signals.read_end:
                    signals.drain()
                elif fd == master:
                    if not _copy(master, 1):
                        poller.unregister(master)
                elif fd == 0 and stdin_open:
                    try:
                        data = os.read(0, _CHUNK)
                    except OSError:
                        data = b""
                    if data:
                        _write_all(master, data)
                    else:
                        # Our input ended: say so to the program the way a terminal
                        # would (an EOF character), then stop listening.
                        poller.unregister(0)
                        stdin_open = False
                        _write_all(master, termios.tcgetattr(master)[6][termios.VEOF])
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signals.close()


def _copy(master: int, out: int) -> bool:
    """Move what the pty has to `out`; False once it is closed for good (EIO: no peer)."""
    try:
        data = os.read(master, _CHUNK)
    except BlockingIOError:
        return True
    except OSError as err:
        if err.errno == errno.EIO:
            return False
        raise
    if not data:
        return False
    _write_all(out, data)
    return True


def _drain(master: int) -> None:
    """Output the program wrote just before it exited."""
    while select.select([master], [], [], 0.05)[0]:
        if not _copy(master, 1):
            return
