"""The container's init: pid 1 of the new pid namespace, until it execve()s the program.

It builds the container from the inside, in this order:
  rootfs mounts and devices -> prestart/createRuntime/createContainer hooks (run by
  the parent, see hooks.py) -> pivot_root -> the terminal (console.py) -> masked and
  sysctl -> masked and read-only paths -> hostname -> the process's cwd, rlimits and
  other attributes, capabilities, user, no_new_privs, seccomp (pyoci.hardening has
  the order) -> "ready" to the parent -> wait on the exec fifo (this is `created`) ->
  startContainer hooks -> execve.
Every failure before "ready" goes back to the parent over the sync channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import NoReturn

from . import hardening, hooks, rootfs, sync
from .errors import PyociError
from .linux import exec_hygiene
from .linux import syscalls as sc
from .spec import Process, Spec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class InitPlan:
    """Everything the init is handed by the process that forks it."""

    spec: Spec
    container_id: str
    bundle: str
    rootfs: str
    channel: sync.Channel
    fifo_fd: int
    preserve_fds: int = 0
    # Connected console socket (or pyoci's own socketpair end) when process.terminal.
    console_fd: int = -1
    no_pivot: bool = False
    no_new_keyring: bool = False
    # hardening.plan's result when the bootstrap child made it early (prepare_early).
    security: hardening.Hardening | None = None


def prepare_early(plan: InitPlan) -> None:
    """What the init needs that depends on neither its namespaces nor its cgroup, done
    by the bootstrap child while the parent is still making the cgroup."""
    plan.security = hardening.plan(plan.spec, plan.container_id, plan.bundle)


def bring_up_loopback() -> None:
    """`ip link set lo up` as two ioctls. (The C-level _socket: the socket module's
    enum set-up would cost more than everything else here.)"""
    import _socket
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), siocgifflags, request))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))
    finally:
        s.close()


def process_env(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in process.env:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    return env


def home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd, as runc does when the config sets none."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5]
    except OSError:
        pass
    return "/"


def find_executable(name: str, env: dict[str, str]) -> str:
    """args[0] resolved in the container's PATH, with the wording engines map to 126/127."""
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = True
    if denied:
        raise PyociError(f'exec: "{name}": permission denied')
    if "/" in name:
        raise PyociError(f'exec: "{name}": stat {name}: no such file or directory')
    raise PyociError(f'exec: "{name}": executable file not found in $PATH')


def switch_user(process: Process) -> None:
    user = process.user
    try:
        os.setgroups(user.additional_gids)
    except PermissionError:
        # setgroups is denied in a user namespace whose gid_map an unprivileged user
        # wrote (rootless without newgidmap); runc then keeps the groups it has.
        if user.additional_gids:
            raise PyociError("process.user.additionalGids: setgroups is denied in this user "
                             "namespace (rootless without newgidmap)") from None
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


def wait_for_start(fifo_fd: int, before_go: Callable[[], None]) -> None:
    """Block until `pyoci start` opens the fifo, run `before_go` (startContainer hooks),
    then tell start we are going: "0", or "E" and the reason start must fail with."""
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.close(fifo_fd)
    try:
        before_go()
    except BaseException as err:
        os.write(fd, b"E" + str(err).encode()[:4000])
        os.close(fd)
        raise
    os.write(fd, b"0")
    os.close(fd)


def run_init(plan: InitPlan, idmapped_mounts: dict[int, int] | None = None) -> NoReturn:
    """`idmapped_mounts`: mount index -> detached idmapped tree (pyoci.bootstrap)."""
    spec, channel = plan.spec, plan.channel
    assert spec.process is not None
    try:
        # Hold no host resource longer than needed, and none through execve.
        sc.prctl(sc.PR_SET_DUMPABLE, 0, step="make init non-dumpable")
        keep = {0, 1, 2, channel.fileno(), plan.fifo_fd, plan.console_fd} - {-1}
        keep.update(range(3, 3 + plan.preserve_fds))
        keep.update((idmapped_mounts or {}).values())
        sc.close_fds_except(keep)
        trace = channel.trace
        trace(f"init: in the container's new namespaces; kept descriptors {sorted(keep)}")
        if not plan.no_new_keyring:
            from .linux import keyring
            keyring.join_new_session_keyring(plan.container_id)
            trace(f"init: joined a new session keyring _ses.{plan.container_id}")
        new = {ns.type for ns in spec.linux.namespaces if not ns.path}
        in_user_ns = spec.linux.namespace("user") is not None
        security = hardening.prepare(spec, plan.container_id, plan.bundle, plan.security)
        for warning in security.warnings:
            os.write(2, f"pyoci: warning: {warning}\n".encode())

        rootfs.prepare(spec, plan.rootfs, plan.bundle, "cgroup" in new, in_user_ns,
                       "network" in new, idmapped_mounts or {},
                       trace if channel.tracing else None)
        if "network" in new:
            bring_up_loopback()
            trace("init: loopback up")
        # prestart, createRuntime and createContainer: all run by the parent (hooks.py).
        if spec.hooks.prestart or spec.hooks.create_runtime or spec.hooks.create_container:
            channel.send(sync.HOOKS_REQUEST, phase="createRuntime")
            channel.expect(sync.HOOKS_DONE)
        # The pid the runtime sees, for the startContainer hooks' state; and their
        # subprocess module, which cannot be imported once the host's files are gone.
        host_pid = int(os.readlink("/proc/self"))
        if spec.hooks.start_container:
            import subprocess  # noqa: F401
        if spec.process.terminal:
            from . import console  # only terminals need it (and socket); now, before the pivot
        if plan.no_pivot:
            rootfs.move_root(plan.rootfs)
            trace(f"init: moved {plan.rootfs} onto / and chrooted (--no-pivot)")
        else:
            rootfs.pivot(plan.rootfs)
            trace(f"init: pivot_root into {plan.rootfs}")
        if spec.process.terminal:
            console.setup_terminal(plan.console_fd, spec.process.console_size,
                                   spec.process.user.uid, spec.process.user.gid, console=True)
            trace("init: pty allocated, master sent, /dev/console bound")
        # Before the read-only paths: /proc/sys is usually one of them.
        hardening.apply_sysctl(spec)
        rootfs.finish(spec)
        trace("init: sysctls, masked and read-only paths applied")
        if spec.hostname is not None:
            sc.sethostname(spec.hostname)
        if spec.domainname is not None:
            sc.setdomainname(spec.domainname)

        process = spec.process
        env = process_env(process)
        os.makedirs(process.cwd, exist_ok=True)
        os.chdir(process.cwd)
        hardening.finalize(security, lambda: switch_user(process))
        if process.user.umask is not None:
            os.umask(process.user.umask)
        else:
            os.umask(0o022)
        executable = find_executable(process.args[0], env)
        trace(f"init: user, capabilities and seccomp set; program {executable}")

        channel.send(sync.READY)
        channel.close()
    except BaseException as err:
        channel.report_failure("container init", err)
        os._exit(1)

    # From here on nobody listens on the channel: errors go to the container's stderr.
    try:
        wait_for_start(plan.fifo_fd, lambda: hooks.run_hooks(
            spec.hooks.start_container, "startContainer",
            hooks.hook_state(plan.container_id, host_pid, plan.bundle, spec.annotations,
                             "running")))
        exec_hygiene.prepare_exec(plan.preserve_fds)
        os.execve(executable, process.args, env)
    except BaseException as err:
        os.write(2, f"pyoci: {err}\n".encode())
    os._exit(127)
