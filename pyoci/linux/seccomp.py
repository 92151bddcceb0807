"""A seccomp filter from `linux.seccomp`, through a small ctypes binding of libseccomp2.

The library is loaded only when a profile is present (`compile_filter`), so a container
without seccomp never pays for it. Building the filter (name lookups, rules) and loading
it are separate steps: the init builds early, where an error is still a clean `create`
failure, and loads as late as possible, where every syscall after it must be allowed.

Behaviour follows runc:
- a syscall name the library does not know is skipped (the profile may be newer than
  the host), so is a rule whose action equals the default action (a no-op);
- several conditions on the same argument index cannot be ANDed by libseccomp, so each
  becomes its own rule;
- the filter never sets no_new_privs by itself: that is `process.noNewPrivileges`'s job;
- SCMP_ACT_NOTIFY is refused as the default action and for `write` (the runtime must
  still write after loading), and `load` returns the notify fd for the listener.

Compiling a large profile (an engine's default has hundreds of names on three
architectures) costs libseccomp tens of milliseconds, and engines send the same profile
for every container. So a filter without NOTIFY is compiled to its BPF program once and
kept in a cache (`cache_dir`) keyed by everything that shapes the program: the profile,
libseccomp's version and the machine. The program is then installed with seccomp(2) and
the flags the profile asks for, which is what libseccomp's own load does. A cache entry
holds the full key and is used only if it matches exactly; the cache is a speed-up only,
so a cache that cannot be read or written is ignored.

Not done: runc's patch of the compiled BPF that answers ENOSYS (instead of the default
action) for syscalls newer than every syscall the profile names. Engine profiles use
defaultErrnoRet ENOSYS for the same purpose, so this only matters for a profile whose
default is EPERM or KILL; a new syscall then gets the default action.
"""

from __future__ import annotations

import array
import ctypes
import errno
import json
import os
import socket
import zlib
from dataclasses import dataclass, field
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from ..errors import PyociError, SyscallError
from . import syscalls
from ..spec import Seccomp, SeccompArg, SeccompRule

_LIBRARY = "libseccomp.so.2"

# Action values from seccomp.h; ERRNO and TRACE carry a 16-bit return code.
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_NOTIFY = 0x7FC00000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

_FIXED_ACTIONS = {
    "SCMP_ACT_KILL": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": _ACT_TRAP,
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
    "SCMP_ACT_LOG": _ACT_LOG,
    "SCMP_ACT_NOTIFY": _ACT_NOTIFY,
}
_ERRNO_ACTIONS = {"SCMP_ACT_ERRNO": _ACT_ERRNO, "SCMP_ACT_TRACE": _ACT_TRACE}

OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# Filter attributes (enum scmp_filter_attr).
_ATTR_CTL_NNP = 3
_ATTR_CTL_TSYNC = 4
_ATTR_CTL_LOG = 6
_ATTR_CTL_SSB = 7
_ATTR_CTL_WAITKILL = 10  # libseccomp >= 2.6 only

# The same flags as seccomp(2) takes them, for installing a compiled program.
_KERNEL_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}

CACHE_ENV = "PYOCI_SECCOMP_CACHE"  # a directory, or empty for no cache
_DEFAULT_CACHE = "/var/cache/pyoci/seccomp"
_CACHE_FORMAT = 1

FLAG_ATTRIBUTES = {
    "SECCOMP_FILTER_FLAG_TSYNC": _ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": _ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": _ATTR_CTL_SSB,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": _ATTR_CTL_WAITKILL,
}

_MAX_SYSCALL_ARGS = 6


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def _load_library() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(_LIBRARY, use_errno=True)
    except OSError as e:
        raise PyociError(f"linux.seccomp: cannot load {_LIBRARY} (install libseccomp2): {e}") from None
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_native.argtypes = []
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.restype = ctypes.c_int
    lib.seccomp_notify_fd.argtypes = [ctypes.c_void_p]
    lib.seccomp_notify_fd.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_version.argtypes = []
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    return lib


def library_version(lib: ctypes.CDLL) -> str:
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def action_value(name: str, errno_ret: int | None, where: str) -> int:
    """The libseccomp action for an OCI action name; ERRNO and TRACE default to EPERM."""
    if name in _ERRNO_ACTIONS:
        code = errno.EPERM if errno_ret is None else errno_ret
        if not 0 <= code <= 0xFFFF:
            raise PyociError(f"{where}: errno {code} is out of range")
        return _ERRNO_ACTIONS[name] | code
    if name in _FIXED_ACTIONS:
        if errno_ret is not None:
            raise PyociError(f"{where}: {name} returns no errno; remove the errno value")
        return _FIXED_ACTIONS[name]
    raise PyociError(f"{where}: unknown seccomp action {name!r}")


def _conditions(args: list[SeccompArg], where: str) -> list[list[_ArgCmp]]:
    """The argument checks of one rule, grouped into the rules libseccomp can take."""
    cmps = []
    for i, a in enumerate(args):
        op = OPERATORS.get(a.op)
        if op is None:
            raise PyociError(f"{where}.args[{i}].op: unknown operator {a.op!r}")
        if not 0 <= a.index < _MAX_SYSCALL_ARGS:
            raise PyociError(f"{where}.args[{i}].index: must be 0 to {_MAX_SYSCALL_ARGS - 1}")
        # For MASKED_EQ the first datum is the mask, the second the value it must equal.
        cmps.append(_ArgCmp(a.index, op, a.value & 0xFFFFFFFFFFFFFFFF,
                            a.value_two & 0xFFFFFFFFFFFFFFFF))
    indexes = [c.arg for c in cmps]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in cmps]
    return [cmps]


@dataclass
class SeccompFilter:
    """A built, not yet loaded filter. `load` it once, or `release` it.

    Either `program` holds the compiled BPF (installed with seccomp(2)), or `ctx` is a
    libseccomp context that libseccomp loads (a NOTIFY filter, whose listener fd
    libseccomp hands out)."""

    lib: ctypes.CDLL
    ctx: int
    uses_notify: bool
    skipped_syscalls: list[str] = field(default_factory=list)
    program: bytes = b""
    kernel_flags: int = 0

    def load(self) -> int | None:
        """Install the filter on the calling thread; the notify fd if NOTIFY is used."""
        if self.program:
            syscalls.seccomp_set_filter(self.program, self.kernel_flags)
            return None
        rc = self.lib.seccomp_load(self.ctx)
        if rc < 0:
            raise SyscallError("load seccomp filter", -rc)
        notify_fd = None
        if self.uses_notify:
            notify_fd = self.lib.seccomp_notify_fd(self.ctx)
            if notify_fd < 0:
                raise SyscallError("get seccomp notify fd", -notify_fd)
        return notify_fd

    def export_bpf(self) -> bytes:
        """The compiled BPF program."""
        if self.program:
            return self.program
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = self.lib.seccomp_export_bpf(self.ctx, fd)
            if rc < 0:
                raise SyscallError("export seccomp filter", -rc)
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = 0


def cache_dir() -> str | None:
    """Where compiled programs are kept: $PYOCI_SECCOMP_CACHE, else root's cache
    directory. Another user (rootless) simply cannot use root's, and compiles."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return configured or None
    return _DEFAULT_CACHE


def _cache_key(lib: ctypes.CDLL, config: Seccomp) -> str:
    """Everything the compiled program depends on, as one canonical string."""
    rules = [[r.names, r.action, r.errno_ret, [[a.index, a.value, a.value_two, a.op] for a in r.args]]
             for r in config.syscalls]
    return json.dumps([_CACHE_FORMAT, library_version(lib), os.uname().machine,
                       config.default_action, config.default_errno_ret, config.architectures,
                       config.flags, rules], separators=(",", ":"))


def _cache_path(directory: str, key: str) -> str:
    encoded = key.encode()
    # The name only spreads entries; a hit needs the whole key to match.
    return os.path.join(directory, f"{zlib.crc32(encoded):08x}{zlib.adler32(encoded):08x}.json")


def _cache_read(directory: str, key: str) -> tuple[bytes, list[str]] | None:
    try:
        with open(_cache_path(directory, key), "rb") as f:
            entry = json.load(f)
        if entry["key"] != key:
            return None
        program = bytes.fromhex(entry["bpf"])
        skipped = list(entry["skipped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (program, skipped) if program and len(program) % 8 == 0 else None


def _cache_write(directory: str, key: str, program: bytes, skipped: list[str]) -> None:
    path = _cache_path(directory, key)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "w") as f:
            json.dump({"key": key, "bpf": program.hex(), "skipped": skipped}, f)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def compile_filter(config: Seccomp, where: str = "linux.seccomp",
                   cache: str | None = None) -> SeccompFilter:
    """Build the filter `config` describes; PyociError names the field on a bad value.
    With a `cache` directory, a filter without NOTIFY comes back compiled to its program,
    from the cache when an earlier container used the same profile."""
    lib = _load_library()
    if config.default_action == "SCMP_ACT_NOTIFY":
        raise PyociError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    key = _cache_key(lib, config) if cache else ""
    if cache:
        hit = _cache_read(cache, key)
        if hit is not None:  # only a filter compiled to a program is ever stored
            return SeccompFilter(lib=lib, ctx=0, uses_notify=False, skipped_syscalls=hit[1],
                                 program=hit[0], kernel_flags=_kernel_flags(config.flags) or 0)
    built = _build(lib, config, where)
    flags = _kernel_flags(config.flags)
    if cache and not built.uses_notify and flags is not None:
        try:
            built.program = built.export_bpf()
        finally:
            built.release()
        built.kernel_flags = flags
        _cache_write(cache, key, built.program, built.skipped_syscalls)
    return built


def _kernel_flags(flags: list[str]) -> int | None:
    """seccomp(2)'s flags for the profile's; None if one needs libseccomp's own load."""
    value = 0
    for flag in flags:
        if flag not in _KERNEL_FLAGS:
            return None
        value |= _KERNEL_FLAGS[flag]
    return value


def _build(lib: ctypes.CDLL, config: Seccomp, where: str) -> SeccompFilter:
    default = action_value(config.default_action, config.default_errno_ret, f"{where}.defaultAction")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise PyociError(f"{where}: libseccomp refused the default action {config.default_action}")
    built = SeccompFilter(lib=lib, ctx=ctx, uses_notify=False)
    try:
        _set_attributes(lib, ctx, config, where)
        _add_architectures(lib, ctx, config.architectures, where)
        for i, rule in enumerate(config.syscalls):
            _add_rule(built, rule, default, f"{where}.syscalls[{i}]")
    except BaseException:
        built.release()
        raise
    return built


def _set_attributes(lib: ctypes.CDLL, ctx: int, config: Seccomp, where: str) -> None:
    # libseccomp sets no_new_privs on load unless told otherwise; pyoci sets it only
    # when process.noNewPrivileges asks.
    rc = lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0)
    if rc < 0:
        raise SyscallError("seccomp: clear the no_new_privs attribute", -rc)
    for i, flag in enumerate(config.flags):
        attribute = FLAG_ATTRIBUTES.get(flag)
        if attribute is None:
            raise PyociError(f"{where}.flags[{i}]: unknown seccomp flag {flag!r}")
        rc = lib.seccomp_attr_set(ctx, attribute, 1)
        if rc < 0:
            raise PyociError(f"{where}.flags[{i}]: {flag} is not supported by libseccomp "
                             f"{library_version(lib)} or this kernel (error {-rc})")


def _add_architectures(lib: ctypes.CDLL, ctx: int, names: list[str], where: str) -> None:
    for i, name in enumerate(names):
        short = name.removeprefix("SCMP_ARCH_").lower()
        token = lib.seccomp_arch_resolve_name(short.encode())
        if token == 0:
            raise PyociError(f"{where}.architectures[{i}]: unknown architecture {name!r}")
        rc = lib.seccomp_arch_add(ctx, token)
        # The native architecture is in every new filter already.
        if rc < 0 and rc != -errno.EEXIST:
            raise PyociError(f"{where}.architectures[{i}]: libseccomp cannot add {name} (error {-rc})")


def _add_rule(built: SeccompFilter, rule: SeccompRule, default: int, where: str) -> None:
    lib = built.lib
    action = action_value(rule.action, rule.errno_ret, f"{where}.action")
    if action == default:
        return
    groups = _conditions(rule.args, where)
    for j, name in enumerate(rule.names):
        if action == _ACT_NOTIFY and name == "write":
            raise PyociError(f"{where}.names[{j}]: SCMP_ACT_NOTIFY cannot be used for write")
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number == -1:  # __NR_SCMP_ERROR: not a syscall this libseccomp knows
            built.skipped_syscalls.append(name)
            continue
        for cmps in groups:
            arr = (_ArgCmp * max(len(cmps), 1))(*cmps)
            rc = lib.seccomp_rule_add_array(built.ctx, action, number, len(cmps), arr)
            if rc < 0:
                raise PyociError(f"{where}: libseccomp refused the rule for {name}: "
                                 f"{errno.errorcode.get(-rc, str(-rc))}")
        if action == _ACT_NOTIFY:
            built.uses_notify = True


def load(config: Seccomp, where: str = "linux.seccomp") -> int | None:
    """Build and load in one step; returns the notify fd when NOTIFY is used."""
    built = compile_filter(config, where)
    try:
        return built.load()
    finally:
        built.release()


def process_state_message(state: dict[str, Any], metadata: str | None = None) -> bytes:
    """The "container process state" the runtime spec sends to a seccomp agent."""
    message: dict[str, Any] = {
        "ociVersion": state.get("ociVersion", "1.0.2"),
        "fds": ["seccompFd"],
        "pid": state.get("pid", 0),
        "state": state,
    }
    if metadata:
        message["metadata"] = metadata
    return json.dumps(message).encode()


def send_state(sock: socket.socket, notify_fd: int, state: dict[str, Any],
               metadata: str | None, listener_path: str) -> None:
    """Send the state with the fd in SCM_RIGHTS over a connected socket, then close it."""
    payload = process_state_message(state, metadata)
    try:
        with sock:
            sent = sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                             array.array("i", [notify_fd]))])
            if sent < len(payload):
                sock.sendall(payload[sent:])
    except OSError as e:
        raise SyscallError(f"send seccomp notify fd to listener {listener_path}",
                           e.errno or errno.EIO) from None


def connect_listener(listener_path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(listener_path)
    except OSError as e:
        sock.close()
        raise SyscallError(f"send seccomp notify fd to listener {listener_path}: connect",
                           e.errno or errno.EIO) from None
    return sock


def send_to_listener(listener_path: str, notify_fd: int, state: dict[str, Any],
                     metadata: str | None = None) -> None:
    """Hand the notify fd to the seccomp agent at listener_path: one connection, one
    JSON message with the fd in SCM_RIGHTS, then close (the runtime spec's protocol).
    `state` is the container's state as `pyoci state` prints it; its pid must be the
    pid of the container process as the runtime sees it."""
    send_state(connect_listener(listener_path), notify_fd, state, metadata, listener_path)
