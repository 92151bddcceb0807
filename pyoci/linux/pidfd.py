"""Process file descriptors: signal or wait for a process without the risk of a recycled pid.

Through the os and signal modules (Python >= 3.9), not ctypes: start, kill and delete
need nothing else from the kernel layer, and importing ctypes would cost them start-up.
"""

from __future__ import annotations

import os
import signal

from ..errors import SyscallError


def open_pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)
    except OSError as err:
        raise SyscallError(f"open process {pid}", err.errno or 0) from None


def send_signal(pidfd: int, sig: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except OSError as err:
        raise SyscallError(f"send signal {sig}", err.errno or 0) from None
