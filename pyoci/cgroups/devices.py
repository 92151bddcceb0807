"""Device access rules: reduce the OCI rule list to the state the kernel keeps, write it
to a v1 devices cgroup, or compile it into a cgroup-device eBPF program for cgroup2.

Both back ends work from the same reduced state (a default plus exceptions), so v1 and
the eBPF program always agree, and the eBPF program mirrors the v1 kernel's matching:
with default deny one exception must cover every requested access; with default allow
any overlap with a denied exception refuses the request.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field

from pyoci.cgroups.resources import DeviceRule
from pyoci.errors import PyociError, SyscallError

# Devices every container gets after its own rules, as runc grants them: mknod of any
# node, the standard character devices, ptys and tun.
DEFAULT_ALLOWED: tuple[DeviceRule, ...] = (
    DeviceRule(True, "c", None, None, "m"),
    DeviceRule(True, "b", None, None, "m"),
    DeviceRule(True, "c", 1, 3, "rwm"),    # null
    DeviceRule(True, "c", 1, 8, "rwm"),    # random
    DeviceRule(True, "c", 1, 7, "rwm"),    # full
    DeviceRule(True, "c", 5, 0, "rwm"),    # tty
    DeviceRule(True, "c", 1, 5, "rwm"),    # zero
    DeviceRule(True, "c", 1, 9, "rwm"),    # urandom
    DeviceRule(True, "c", 5, 1, "rwm"),    # console
    DeviceRule(True, "c", 136, None, "rwm"),  # pts/*
    DeviceRule(True, "c", 5, 2, "rwm"),    # ptmx
    DeviceRule(True, "c", 10, 200, "rwm"),  # net/tun
)

Key = tuple[str, int | None, int | None]


@dataclass
class DeviceState:
    """The device rules reduced: a default and its exceptions."""

    default_allow: bool = False
    exceptions: dict[Key, str] = field(default_factory=dict)  # insertion order kept

    def apply(self, rule: DeviceRule) -> None:
        if rule.type == "a":
            if rule.major is None and rule.minor is None:
                self.default_allow = rule.allow
                self.exceptions.clear()
                return
            for t in ("c", "b"):
                self.apply(DeviceRule(rule.allow, t, rule.major, rule.minor, rule.access))
            return
        key = (rule.type, rule.major, rule.minor)
        have = self.exceptions.get(key, "")
        if rule.allow != self.default_allow:
            merged = "".join(c for c in "rwm" if c in have or c in rule.access)
            self.exceptions[key] = merged
        elif have:
            left = "".join(c for c in have if c not in rule.access)
            if left:
                self.exceptions[key] = left
            else:
                del self.exceptions[key]


def reduce_rules(rules: list[DeviceRule]) -> DeviceState:
    """Starting from deny-all (runc's default), apply each rule in order."""
    state = DeviceState()
    for rule in rules:
        state.apply(rule)
    return state


def container_rules(resource_rules: list[DeviceRule] | None,
                    linux_devices: list[tuple[str, int, int]] = (),  # type: ignore[assignment]
                    defaults: bool = True) -> list[DeviceRule]:
    """The full list for a container: its own rules, then the defaults, then the device
    nodes config.json asks to create (type, major, minor), which must be usable."""
    rules = list(resource_rules or [])
    if defaults:
        rules.extend(DEFAULT_ALLOWED)
    for dtype, major, minor in linux_devices:
        if dtype in ("c", "u", "b"):
            rules.append(DeviceRule(True, "b" if dtype == "b" else "c", major, minor, "rwm"))
    return rules


# --- v1 ------------------------------------------------------------------------

def _num(n: int | None) -> str:
    return "*" if n is None else str(n)


def v1_line(key: Key, access: str) -> str:
    return f"{key[0]} {_num(key[1])}:{_num(key[2])} {access}"


def parse_v1_list(text: str) -> DeviceState:
    """State from a devices.list. The kernel shows default-allow as one 'a' line and
    hides its deny exceptions, so that case reads as allow-all."""
    state = DeviceState()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        dtype, majmin, access = parts
        if dtype == "a":
            return DeviceState(True, {})
        major, _, minor = majmin.partition(":")
        key = (dtype, None if major == "*" else int(major), None if minor == "*" else int(minor))
        state.exceptions[key] = access
    return state


def write_v1(directory: str, target: DeviceState) -> None:
    """Move a v1 devices cgroup to `target`. Nothing is written when it is there
    already, so a nested cgroup whose parent is restricted keeps working."""
    with open(os.path.join(directory, "devices.list"), encoding="ascii") as f:
        current = parse_v1_list(f.read())
    if current == target:
        return
    reset = "devices.allow" if target.default_allow else "devices.deny"
    add = "devices.deny" if target.default_allow else "devices.allow"
    _write(directory, reset, "a")
    for key, access in target.exceptions.items():
        _write(directory, add, v1_line(key, access))


def _write(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        hint = ""
        if e.errno == errno.EPERM:
            hint = " (the parent cgroup does not allow this device)"
        raise SyscallError(f"write {value!r} to {path}{hint}", e.errno or 0) from None


# --- cgroup2 eBPF ----------------------------------------------------------------

_BPF_TYPE = {"b": 1, "c": 2}
_BPF_ACCESS = {"m": 1, "r": 2, "w": 4}

# Registers: r2 device type, r3 requested access, r4 major, r5 minor, r1 scratch.
_LDXW, _ALU32_AND_K, _ALU32_RSH_K = 0x61, 0x54, 0x74
_MOV64_X, _MOV64_K, _ALU64_AND_K = 0xbf, 0xb7, 0x57
_JEQ_K, _JNE_K, _EXIT = 0x15, 0x55, 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _access_bits(access: str) -> int:
    return sum(_BPF_ACCESS[c] for c in access)


def compile_program(state: DeviceState) -> bytes:
    """A BPF_PROG_TYPE_CGROUP_DEVICE program deciding like the v1 kernel would."""
    prog = [
        _insn(_LDXW, 2, 1, 0),          # r2 = ctx->access_type
        _insn(_MOV64_X, 3, 2),          # r3 = r2
        _insn(_ALU32_AND_K, 2, imm=0xFFFF),   # r2 = type
        _insn(_ALU32_RSH_K, 3, imm=16),       # r3 = access
        _insn(_LDXW, 4, 1, 4),          # r4 = ctx->major
        _insn(_LDXW, 5, 1, 8),          # r5 = ctx->minor
    ]
    for (dtype, major, minor), access in state.exceptions.items():
        block: list[bytes] = []
        checks: list[tuple[int, int]] = [(2, _BPF_TYPE[dtype])]
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        bits = _access_bits(access)
        if state.default_allow:
            # Deny on any overlap with the denied access.
            tail = [_insn(_MOV64_X, 1, 3), _insn(_ALU64_AND_K, 1, imm=bits),
                    ("skip_if_zero", 1), _insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
        else:
            # Allow only when every requested bit is covered.
            tail = [_insn(_MOV64_X, 1, 3), _insn(_ALU64_AND_K, 1, imm=~bits & 0x7),
                    ("skip_if_nonzero", 1), _insn(_MOV64_K, 0, imm=1), _insn(_EXIT)]
        items: list = [("skip_if_ne", reg, value) for reg, value in checks] + tail
        # Resolve the jumps: each one skips to the end of this block.
        length = len(items)
        for i, item in enumerate(items):
            if isinstance(item, bytes):
                block.append(item)
                continue
            off = length - i - 1
            if item[0] == "skip_if_ne":
                block.append(_insn(_JNE_K, item[1], off=off, imm=item[2]))
            elif item[0] == "skip_if_zero":
                block.append(_insn(_JEQ_K, item[1], off=off, imm=0))
            else:
                block.append(_insn(_JNE_K, item[1], off=off, imm=0))
        prog.extend(block)
    prog += [_insn(_MOV64_K, 0, imm=1 if state.default_allow else 0), _insn(_EXIT)]
    return b"".join(prog)


def apply_v2(directory: str, state: DeviceState) -> None:
    from pyoci.cgroups import bpf
    if state.default_allow and not state.exceptions:
        # Nothing to restrict: leave the directory without a program of ours.
        bpf.detach_all(directory)
        return
    try:
        bpf.replace_device_program(directory, compile_program(state))
    except SyscallError as e:
        if e.errno in (errno.EPERM, errno.EINVAL) and not os.access(directory, os.W_OK):
            raise PyociError(f"{e.message}; device rules on cgroup2 need CAP_SYS_ADMIN "
                             f"and CAP_BPF") from None
        raise
