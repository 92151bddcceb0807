"""Errors carry their context as values until the CLI turns them into one line."""

from __future__ import annotations

import errno as _errno
import os


class PyociError(Exception):
    """A failure the user should read: `message` is complete and names what failed."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PyociError):
    """config.json is malformed or asks for something that cannot be done."""


class UsageError(PyociError):
    """The command line itself is wrong."""


class ContainerNotFound(PyociError):
    def __init__(self, container_id: str) -> None:
        # "does not exist" is matched by containerd and CRI-O.
        super().__init__(f"container {container_id} does not exist")


class WrongState(PyociError):
    """An operation was asked of a container in a state that forbids it."""


class SyscallError(PyociError):
    """A kernel call failed; `step` says what pyoci was doing, in the user's terms."""

    def __init__(self, step: str, err: int) -> None:
        self.step = step
        self.errno = err
        super().__init__(f"{step}: {errno_text(err)}")


def errno_text(err: int) -> str:
    name = _errno.errorcode.get(err, str(err))
    return f"{os.strerror(err).lower()} ({name})"
