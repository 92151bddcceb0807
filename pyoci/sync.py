"""The channel between pyoci and the processes it forks into the container.

A SOCK_SEQPACKET socketpair: each message is one JSON object with a "type", and
message boundaries are kept by the kernel. The child side reports every failure as
an ERROR message naming the step, so the parent can print one line and clean up.
"""

from __future__ import annotations

import _socket  # the C module: `socket` costs ~4 ms of enum set-up per start
import json
from collections.abc import Callable
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from .errors import PyociError

# Child -> parent
PID = "pid"                  # {"pid": host pid of the container's init}
USERNS_READY = "userns"      # the child unshared its user namespace: write the id maps
HOOKS_REQUEST = "hooks"      # {"phase": ...}: run these hooks in the runtime namespace
READY = "ready"              # the init is set up and waits on the exec fifo
ERROR = "error"              # {"message": ...}
DEBUG = "debug"              # {"message": ...}: a step, for `--debug` (never expected)
# Parent -> child
GO = "go"                    # the child is in its cgroup and may create namespaces
MAPPED = "mapped"            # the id maps are written
HOOKS_DONE = "hooks-done"

_MAX = 65536


class ChildFailed(PyociError):
    """The container's setup failed on the child side; the message names the step."""


class Channel:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        # --debug: the child reports its steps; the parent logs them as they arrive
        # (so the log's timing is the step's). Off, a step costs one test.
        self.tracing = False
        self.on_debug: Callable[[str], None] | None = None

    def trace(self, step: str) -> None:
        if self.tracing:
            self.send(DEBUG, message=step)

    def send(self, kind: str, **fields: Any) -> None:
        fields["type"] = kind
        self.sock.send(json.dumps(fields).encode())

    def recv(self) -> dict[str, Any]:
        data = self.sock.recv(_MAX)
        if not data:
            raise ChildFailed("container init exited before it finished its setup")
        message = json.loads(data)
        if message.get("type") == DEBUG:
            if self.on_debug is not None:
                self.on_debug(message.get("message", ""))
            return self.recv()
        if message.get("type") == ERROR:
            raise ChildFailed(message.get("message", "unknown error in container init"))
        return message

    def expect(self, kind: str) -> dict[str, Any]:
        message = self.recv()
        if message.get("type") != kind:
            raise ChildFailed(f"sync: expected {kind!r}, got {message.get('type')!r}")
        return message

    def report_failure(self, who: str, err: BaseException) -> None:
        """The child side's last word: the failure as one line for the parent to print.
        A PyociError already names its step; anything else is prefixed with `who`."""
        if isinstance(err, PyociError):
            message = str(err)
        elif isinstance(err, OSError):
            message = f"{who}: {err.strerror or err}: {err.filename or ''}".rstrip(": ")
        else:
            message = f"{who}: {type(err).__name__}: {err}"
        try:
            self.send(ERROR, message=message)
        except OSError:
            pass  # the parent is gone: nobody is left to tell

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


def channel_pair() -> tuple[Channel, Channel]:
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    return Channel(parent), Channel(child)
