"""The state directory: one folder per container under the runtime root.

<root>/<id>/state.json   what create recorded (written atomically, under the lock)
<root>/<id>/exec.fifo    present while the container is `created`
Operations on one id are serialised with flock on the container's directory.
Status is never stored: it is derived from the init's pid and start time each time,
so a recycled pid is never mistaken for the container.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION
from .errors import ContainerNotFound, PyociError
from .linux import proc

# runc's rule, ^[\w+-\.]+$ with Go's ASCII-only \w.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"


class DamagedState(PyociError):
    """state.json exists but cannot be read back: only `delete --force` can help."""


def check_id(container_id: str) -> None:
    if not container_id or not _ID_CHARS.issuperset(container_id) or container_id in (".", ".."):
        raise PyociError(f"invalid container ID format: {container_id!r}")


class ContainerState:
    """What create records; the private half of the state (the public one is derived).

    A plain class rather than a dataclass: every command loads one, and the light
    ones (state, start, kill, delete) should not import dataclasses to do it.
    """

    FIELDS = ("id", "bundle", "rootfs", "created", "pid", "start_time", "owner",
              "annotations", "cgroup", "config", "created_ok")

    def __init__(self, id: str, bundle: str, rootfs: str, created: str, pid: int = 0,
                 start_time: int = 0, owner: str = "",
                 annotations: dict[str, str] | None = None,
                 cgroup: dict[str, Any] | None = None,
                 config: dict[str, Any] | None = None, created_ok: bool = False) -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.pid = pid
        self.start_time = start_time  # of the init, in clock ticks: tells a recycled pid
        self.owner = owner
        self.annotations = annotations or {}
        self.cgroup = cgroup
        # config.json as it was at create: hooks for delete, the process for exec.
        self.config = config or {}
        # False until create finished: a half-made container is `creating`.
        self.created_ok = created_ok

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> "ContainerState":
        return cls(**{name: saved[name] for name in cls.FIELDS if name in saved})


def rfc3339_now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class ContainerDir:
    """One container's folder, held under an flock for the life of the object."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def fifo_path(self) -> str:
        return self.file(EXEC_FIFO)

    def load(self) -> ContainerState | None:
        try:
            with open(self.file(STATE_FILE)) as f:
                return ContainerState.from_json(json.load(f))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as err:
            raise DamagedState(f"state of container {os.path.basename(self.path)} is "
                               f"damaged ({err}); `delete --force` removes it") from None

    def save(self, state: ContainerState) -> None:
        tmp = self.file(STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(state.to_json(), f)
        os.rename(tmp, self.file(STATE_FILE))

    def remove(self) -> None:
        # A flat folder of a few files: no need for shutil (and its import) here.
        for name in os.listdir(self.path):
            try:
                os.unlink(self.file(name))
            except FileNotFoundError:
                pass
        os.rmdir(self.path)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StateRoot:
    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, container_id: str) -> str:
        check_id(container_id)
        return os.path.join(self.root, container_id)

    def create(self, container_id: str) -> ContainerDir:
        """Make and lock the folder of a new container; refuse an id in use."""
        path = self._path(container_id)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise PyociError(f"container with given ID already exists: {container_id}") from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return ContainerDir(path, fd)

    def open(self, container_id: str, exclusive: bool = True) -> ContainerDir:
        path = self._path(container_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        # Deleted while we waited for the lock.
        if not os.path.exists(path):
            os.close(fd)
            raise ContainerNotFound(container_id)
        return ContainerDir(path, fd)

    def ids(self) -> list[str]:
        try:
            return sorted(name for name in os.listdir(self.root)
                          if os.path.isdir(os.path.join(self.root, name)))
        except FileNotFoundError:
            return []


def init_alive(state: ContainerState) -> bool:
    return state.pid > 0 and proc.is_alive(state.pid, state.start_time)


def status_of(cdir: ContainerDir, state: ContainerState | None, frozen: bool = False) -> str:
    if state is None or not state.created_ok:
        return "creating"
    if not init_alive(state):
        return "stopped"
    if frozen:
        return "paused"
    if os.path.exists(cdir.fifo_path):
        return "created"
    return "running"


def public_state(state: ContainerState, status: str) -> dict[str, Any]:
    """The state object of the runtime spec, plus runc's rootfs/created/owner."""
    return {
        "ociVersion": OCI_VERSION,
        "id": state.id,
        "pid": state.pid if status in ("created", "running", "paused") else 0,
        "status": status,
        "bundle": state.bundle,
        "rootfs": state.rootfs,
        "created": state.created,
        "owner": state.owner,
        "annotations": state.annotations,
    }


def write_pid_file(path: str, pid: int) -> None:
    """Digits only, no newline, renamed into place: callers Atoi the raw bytes."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)
