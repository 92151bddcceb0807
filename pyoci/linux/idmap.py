"""uid_map and gid_map of a process in a new user namespace, written by its parent."""

from __future__ import annotations

import os

from ..errors import PyociError
from ..spec import IdMapping


def _lines(mappings: list[IdMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def write_maps(pid: int, uid_mappings: list[IdMapping], gid_mappings: list[IdMapping]) -> None:
    for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        path = f"/proc/{pid}/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                # The kernel takes the whole map in one write.
                os.write(fd, _lines(mappings).encode())
            finally:
                os.close(fd)
        except OSError as err:
            raise PyociError(f"write {name} of the container: {os.strerror(err.errno or 0).lower()}") from None
