"""Helpers for terminal tests: a console-socket server like an engine's, and a pty reader."""

from __future__ import annotations

import array
import os
import select
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest


class ConsoleServer:
    """A SOCK_STREAM listener that takes one pty master the way go-runc/conmon do:
    one message, exactly one SCM_RIGHTS descriptor."""

    def __init__(self, directory: Path, name: str = "console.sock") -> None:
        self.path = directory / name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path) if len(str(self.path)) < 108 else self._bind_long())
        self.sock.listen(1)

    def _bind_long(self) -> str:
        # bind() has the same 108-byte limit: bind through the directory's fd.
        fd = os.open(self.path.parent, os.O_PATH)
        self._dirfd = fd
        return f"/proc/self/fd/{fd}/{self.path.name}"

    def receive(self, timeout: float = 20) -> tuple[int, bytes]:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            data, anc, _flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            assert len(anc) == 1, anc
            level, kind, payload = anc[0]
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            assert len(payload) == fds.itemsize, "exactly one descriptor"
            fds.frombytes(payload)
            assert data, "the message carries a non-empty name"
            return fds[0], data

    def close(self) -> None:
        self.sock.close()


def read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    """Read a pty master until `needle` shows up (or the peer is gone)."""
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def read_all(fd: int, timeout: float = 20) -> bytes:
    """Everything until the pty has no peer left (EIO)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def terminal_config(config: dict[str, Any], *args: str, rows: int = 0, cols: int = 0) -> None:
    config["process"]["terminal"] = True
    config["process"]["args"] = list(args)
    if rows and cols:
        config["process"]["consoleSize"] = {"height": rows, "width": cols}


def own_root(runtime: Any, prefix: str) -> None:
    """The task's state-root naming: /tmp/pyoci-<prefix>-*."""
    runtime.root = Path(f"/tmp/pyoci-{prefix}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def console_server(tmp_path: Path):
    server = ConsoleServer(tmp_path)
    try:
        yield server
    finally:
        server.close()
