"""A console-socket receiver: the runtime connects and passes the pty master with SCM_RIGHTS.

No thread is needed: a unix stream connect completes against the listen backlog and the
message waits in the socket buffer, so the suite accepts after `create` has returned.
"""

from __future__ import annotations

import array
import os
import select
import socket
import time
from pathlib import Path


class ConsoleSocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)

    def receive_master(self, timeout: float = 5.0) -> int:
        """The pty master the runtime sent; raises TimeoutError or ValueError."""
        self._listener.settimeout(timeout)
        connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(timeout)
            fds = array.array("i")
            _, ancillary, _, _ = connection.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not fds:
            raise ValueError("the runtime connected to the console socket but sent no descriptor")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def close(self) -> None:
        self._listener.close()


def read_until(fd: int, marker: bytes, timeout: float = 5.0) -> bytes:
    """Reads a pty master until `marker` shows up, the slave side closes, or time runs out."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every slave descriptor is closed
            break
        if not chunk:
            break
        data += chunk
    return data
