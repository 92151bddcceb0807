"""Reading and writing cgroup control files, with errors that name the file."""

from __future__ import annotations

import os

from pyoci.errors import SyscallError


def write(directory: str, name: str, value: str | int) -> None:
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise SyscallError(f"write {str(value)!r} to {path}", e.errno or 0) from None


def read(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise SyscallError(f"read {path}", e.errno or 0) from None


def read_int(directory: str, name: str) -> int:
    """An integer file; "max" (cgroup2's unlimited) reads as -1."""
    text = read(directory, name)
    return -1 if text == "max" else int(text.split()[0])


def exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line), as memory.stat or cpu.stat."""
    out: dict[str, int] = {}
    for line in read(directory, name).splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def read_pids(directory: str, recursive: bool = True) -> list[int]:
    pids: list[int] = []
    for dirpath, _dirs, _files in os.walk(directory) if recursive else [(directory, [], [])]:
        try:
            with open(os.path.join(dirpath, "cgroup.procs"), encoding="ascii") as f:
                pids.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue  # removed while walking
        except OSError as e:
            raise SyscallError(f"read {dirpath}/cgroup.procs", e.errno or 0) from None
    return pids
