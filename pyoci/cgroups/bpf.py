"""The few bpf(2) commands a cgroup device program needs, through ctypes.

Only x86_64 and aarch64 syscall numbers are known; elsewhere loading fails with a clear
error instead of guessing.
"""

from __future__ import annotations

import ctypes
import os

import struct

from pyoci.errors import SyscallError

_SYS_BPF = {"x86_64": 321, "aarch64": 280}

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_ATTR_SIZE = 128


def _bpf(cmd: int, attr: ctypes.Array, step: str) -> int:
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise SyscallError(f"{step}: bpf(2) number unknown on {os.uname().machine}", 38)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(_ATTR_SIZE))
    if ret < 0:
        raise SyscallError(step, ctypes.get_errno())
    return int(ret)


def _attr(*fields: tuple[int, str, int]) -> ctypes.Array:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, buf, offset, value)
    return buf


def load_device_program(code: bytes, step: str) -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; return its fd. The verifier's log is
    added to the error when it refuses the program."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = _attr((0, "<I", BPF_PROG_TYPE_CGROUP_DEVICE), (4, "<I", len(code) // 8),
                 (8, "<Q", ctypes.addressof(insns)), (16, "<Q", ctypes.addressof(license_)))
    struct.pack_into("16s", attr, 48, b"pyoci_devices")
    try:
        return _bpf(BPF_PROG_LOAD, attr, step)
    except SyscallError as first:
        # Reload with the verifier log on to say why.
        attr2 = _attr((0, "<I", BPF_PROG_TYPE_CGROUP_DEVICE), (4, "<I", len(code) // 8),
                      (8, "<Q", ctypes.addressof(insns)), (16, "<Q", ctypes.addressof(license_)),
                      (24, "<I", 1), (28, "<I", len(log)), (32, "<Q", ctypes.addressof(log)))
        try:
            return _bpf(BPF_PROG_LOAD, attr2, step)
        except SyscallError:
            text = log.value.decode(errors="replace").strip().splitlines()
            if text:
                first.message += f" (verifier: {text[-1]})"
            raise first from None


def attach(cgroup_fd: int, prog_fd: int, step: str) -> None:
    _bpf(BPF_PROG_ATTACH, _attr((0, "<I", cgroup_fd), (4, "<I", prog_fd),
                                (8, "<I", BPF_CGROUP_DEVICE), (12, "<I", BPF_F_ALLOW_MULTI)), step)


def detach(cgroup_fd: int, prog_fd: int, step: str) -> None:
    _bpf(BPF_PROG_DETACH, _attr((0, "<I", cgroup_fd), (4, "<I", prog_fd),
                                (8, "<I", BPF_CGROUP_DEVICE)), step)


def attached_ids(cgroup_fd: int, step: str) -> list[int]:
    """Ids of device programs attached directly to this cgroup (not inherited ones)."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _attr((0, "<I", cgroup_fd), (4, "<I", BPF_CGROUP_DEVICE),
                 (16, "<Q", ctypes.addressof(ids)), (24, "<I", len(ids)))
    _bpf(BPF_PROG_QUERY, attr, step)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def prog_fd_by_id(prog_id: int, step: str) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr((0, "<I", prog_id)), step)


def replace_device_program(cgroup_dir: str, code: bytes) -> None:
    """Attach `code` to `cgroup_dir` and drop whatever device programs pyoci put there
    before, so an unchanged rule set never stacks up programs."""
    step = f"device program on {cgroup_dir}"
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = attached_ids(dfd, f"query {step}")
        prog = load_device_program(code, f"load {step}")
        try:
            attach(dfd, prog, f"attach {step}")
        finally:
            # The attachment holds its own reference; the fd is no longer needed.
            os.close(prog)
        _detach_ids(dfd, old, f"old {step}")
    finally:
        os.close(dfd)


def detach_all(cgroup_dir: str) -> None:
    step = f"device programs on {cgroup_dir}"
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _detach_ids(dfd, attached_ids(dfd, f"query {step}"), step)
    finally:
        os.close(dfd)


def _detach_ids(dfd: int, prog_ids: list[int], step: str) -> None:
    for prog_id in prog_ids:
        fd = prog_fd_by_id(prog_id, f"find {step}")
        try:
            detach(dfd, fd, f"detach {step}")
        finally:
            os.close(fd)
