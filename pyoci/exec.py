"""`pyoci exec`: run another process in a running container.

Process tree, as for create:
  pyoci exec (host)             builds the process, puts the helper in the container's
                                cgroup, learns the pid, waits or returns (--detach)
    helper (fork)               non-dumpable, only the fds it passes on; prepares the
                                hardening while the host's libraries are visible, joins
                                the init's namespaces (user first, mount last)
      program (fork)            in the container's pid namespace: terminal, cwd, user,
                                capabilities, seccomp, then execve
The helper reports the program's pid and exits. The program holds the sync socket
close-on-exec: end of file on it, with no error before, means execve succeeded.
A failure of the runtime itself exits 255, like runc, so it cannot be mistaken for
the program's own status.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import dataclass, field
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import NoReturn

# Everything the joining child runs is imported here, up front: once it is in the
# container's mount namespace the host's site-packages (and stdlib) are out of reach.
from . import console, hardening, sync
from .context import Context
from .errors import PyociError, UsageError, WrongState
from .linux import syscalls as sc
from .init import find_executable, process_env, switch_user
from .linux import exec_hygiene
from .spec import Capabilities, Process, Spec

RUNTIME_FAILURE = 255


class ExecFailed(PyociError):
    exit_code = RUNTIME_FAILURE


@dataclass
class ExecOptions:
    """`exec`'s flags as the command line gave them."""

    process_file: str | None = None
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    cwd: str | None = None
    user: str | None = None
    additional_gids: list[int] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    apparmor: str | None = None
    process_label: str | None = None
    tty: bool = False
    console_socket: str | None = None
    detach: bool = False
    pid_file: str | None = None
    preserve_fds: int = 0
    ignore_paused: bool = False


# --- the process to run ---------------------------------------------------------------

def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    """`-e K=V` replaces K in the base environment, or is added."""
    merged = list(base)
    for entry in extra:
        key = entry.split("=", 1)[0]
        merged = [e for e in merged if e.split("=", 1)[0] != key]
        merged.append(entry)
    return merged


def _parse_user(text: str) -> tuple[int, int | None]:
    uid, _, gid = text.partition(":")
    try:
        return int(uid), (int(gid) if gid else None)
    except ValueError:
        raise UsageError(f"--user: {text!r} is not uid[:gid] in numbers") from None


def build_process(config: dict, opts: ExecOptions) -> Process:
    """With --process the file is the whole process; otherwise the container's own
    process with the command line's changes."""
    from .spec import load_process

    if opts.process_file:
        try:
            with open(opts.process_file) as f:
                doc = json.load(f)
        except (OSError, ValueError) as err:
            raise UsageError(f"--process {opts.process_file}: {err}") from None
        return load_process(doc)
    if not opts.args:
        raise UsageError("exec: a command to run is required (or --process FILE)")
    base = load_process(config.get("process") or {"args": ["sh"], "cwd": "/"})
    process = dataclasses.replace(base, args=list(opts.args), terminal=opts.tty,
                                  env=_merge_env(base.env, opts.env))
    if opts.cwd:
        process.cwd = opts.cwd
    user = dataclasses.replace(process.user)
    if opts.user:
        user.uid, gid = _parse_user(opts.user)
        if gid is not None:
            user.gid = gid
    if opts.additional_gids:
        user.additional_gids = list(user.additional_gids) + list(opts.additional_gids)
    process.user = user
    if opts.caps:
        caps = dataclasses.replace(process.capabilities or Capabilities())
        for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            current = list(getattr(caps, name) or [])
            setattr(caps, name, current + [c for c in opts.caps if c not in current])
        process.capabilities = caps
    if opts.no_new_privs:
        process.no_new_privileges = True
    if opts.apparmor:
        process.apparmor_profile = opts.apparmor
    if opts.process_label:
        process.selinux_label = opts.process_label
    return process


# --- the operation --------------------------------------------------------------------

def exec_process(ctx: Context, container_id: str, opts: ExecOptions) -> int:
    try:
        return _exec(ctx, container_id, opts)
    except ExecFailed:
        raise
    except PyociError as err:
        raise ExecFailed(str(err)) from None


def _exec(ctx: Context, container_id: str, opts: ExecOptions) -> int:
    from .lifecycle import container_state
    from .spec import load_spec
    from .state import StateRoot

    status = container_state(ctx, container_id)["status"]
    if status == "stopped":
        raise WrongState("cannot exec in a stopped container: container not running")
    if status == "paused" and not opts.ignore_paused:
        raise WrongState("cannot exec in a paused container (use --ignore-paused to override)")
    if status not in ("created", "running", "paused"):
        raise WrongState(f"cannot exec in a container that is {status}: container not running")
    cdir = StateRoot(ctx.root).open(container_id, exclusive=False)
    try:
        state = cdir.load()
    finally:
        cdir.close()
    assert state is not None
    spec = load_spec(state.config)
    process = build_process(state.config, opts)
    if process.terminal and opts.detach and not opts.console_socket:
        raise UsageError("cannot allocate tty if pyoci will detach without setting console socket")
    if opts.console_socket and not process.terminal:
        raise UsageError("cannot use console socket if pyoci will not detach or allocate tty")
    if not process.cwd.startswith("/"):
        raise UsageError(f"cwd {process.cwd!r} must be an absolute path")
    spec = dataclasses.replace(spec, process=process)

    receiver = None
    console_sock = None
    console_fd = -1
    if process.terminal:
        if opts.console_socket:
            from .console import connect_socket
            console_sock = connect_socket(opts.console_socket)
            console_fd = console_sock.fileno()
        else:
            receiver, console_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console_fd = console_sock.fileno()
    if not opts.detach:
        # The program's parent (the helper) exits: the program must become ours.
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1, step="become a subreaper")

    parent, child = sync.channel_pair()
    helper = os.fork()
    if helper == 0:
        parent.close()
        if receiver is not None:
            receiver.close()
        _helper(ctx, spec, state.id, state.bundle, state.pid, child, console_fd,
                opts.preserve_fds)
    child.close()
    if console_sock is not None:
        console_sock.close()
    try:
        if state.cgroup:
            from .cgroups import cgroup_from_state
            cgroup_from_state(state.cgroup, state.id).add_process(helper)
        parent.send(sync.GO)
        pid = parent.expect(sync.PID)["pid"]
        _wait_for_execve(parent)
    finally:
        parent.close()
        _reap(helper)
    ctx.log.debug(f"exec: process {pid} started")

    if opts.pid_file:
        from .state import write_pid_file
        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    if receiver is not None:
        from .console import recv_master
        from .tty_relay import relay
        with receiver:
            master = recv_master(receiver)
        try:
            return relay(master, pid)
        finally:
            os.close(master)
    from .lifecycle import wait_forwarding_signals
    return wait_forwarding_signals(pid)


def _wait_for_execve(channel: sync.Channel) -> None:
    """The program sends ERROR if it fails; end of file means it reached execve."""
    while True:
        try:
            data = channel.sock.recv(65536)
        except ConnectionResetError:
            return
        if not data:
            return
        message = json.loads(data)
        if message.get("type") == sync.ERROR:
            raise ExecFailed(message.get("message", "exec failed"))


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# --- the child side -------------------------------------------------------------------

def _helper(ctx: Context, spec: Spec, container_id: str, bundle: str, init_pid: int,
            channel: sync.Channel, console_fd: int, preserve_fds: int) -> NoReturn:
    from . import hardening
    from .linux import namespaces

    try:
        # Before anything of the container can see us: /proc/<pid>/exe here is the
        # host's python, and non-dumpable hides it (and our fds) from the container.
        sc.prctl(sc.PR_SET_DUMPABLE, 0, step="make exec helper non-dumpable")
        keep = {0, 1, 2, channel.fileno(), console_fd} - {-1}
        keep.update(range(3, 3 + preserve_fds))
        sc.close_fds_except(keep)
        channel.expect(sync.GO)
        security = hardening.prepare(spec, container_id, bundle)
        namespaces.join_namespaces_of(init_pid)
        pid = os.fork()
        if pid == 0:
            _program(spec, security, channel, console_fd, preserve_fds)
        channel.send(sync.PID, pid=pid)
        os._exit(0)
    except BaseException as err:
        channel.report_failure("exec", err)
    os._exit(1)


def _program(spec: Spec, security, channel: sync.Channel, console_fd: int,  # noqa: ANN001
             preserve_fds: int) -> NoReturn:
    process = spec.process
    assert process is not None
    try:
        if process.terminal:
            console.setup_terminal(console_fd, process.console_size, process.user.uid,
                                   process.user.gid, console=False)
        try:
            os.chdir(process.cwd)
        except OSError as err:
            raise PyociError(f"exec: chdir to cwd ({process.cwd!r}) set in config.json failed: "
                             f"{os.strerror(err.errno or 0).lower()}") from None
        env = process_env(process)
        executable = find_executable(process.args[0], env)
        hardening.finalize(security, lambda: switch_user(process))
        os.umask(process.user.umask if process.user.umask is not None else 0o022)
        exec_hygiene.prepare_exec(preserve_fds)
        os.execve(executable, process.args, env)
    except BaseException as err:
        channel.report_failure("exec", err)
    os._exit(RUNTIME_FAILURE)



# --- the command line -----------------------------------------------------------------

def cmd_exec(ctx: Context, argv: list[str]) -> int:
    import argparse

    from .cli import command_parser

    p = command_parser("exec", "run a process in a running container")
    p.add_argument("--process", "-p", help="JSON file with the complete process to run")
    p.add_argument("--env", "-e", action="append", default=[], help="set an environment variable")
    p.add_argument("--cwd", help="working directory in the container")
    p.add_argument("--user", "-u", help="uid[:gid] to run as")
    p.add_argument("--additional-gids", "-g", action="append", type=int, default=[],
                   help="an extra group id")
    p.add_argument("--cap", "-c", action="append", default=[], help="add a capability")
    p.add_argument("--no-new-privs", action="store_true", help="set no_new_privs")
    p.add_argument("--apparmor", help="AppArmor profile")
    p.add_argument("--process-label", help="SELinux label")
    p.add_argument("--tty", "-t", action="store_true", help="allocate a pty")
    p.add_argument("--console-socket", help="unix socket that receives the pty master")
    p.add_argument("--detach", "-d", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", help="file to write the process's pid to")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds from 3 on")
    p.add_argument("--ignore-paused", action="store_true", help="exec even if paused")
    p.add_argument("--cgroup", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("container_id", metavar="ID")
    p.add_argument("command", nargs=argparse.REMAINDER)
    try:
        a = p.parse_args(argv)
        if a.cgroup:
            raise UsageError("exec --cgroup: sub-cgroups for exec are not supported by pyoci")
    except PyociError as err:
        raise ExecFailed(str(err)) from None
    return exec_process(ctx, a.container_id, ExecOptions(
        process_file=a.process, args=a.command, env=a.env, cwd=a.cwd, user=a.user,
        additional_gids=a.additional_gids, caps=[_cap_name(c) for c in a.cap],
        no_new_privs=a.no_new_privs, apparmor=a.apparmor, process_label=a.process_label,
        tty=a.tty, console_socket=a.console_socket, detach=a.detach, pid_file=a.pid_file,
        preserve_fds=a.preserve_fds, ignore_paused=a.ignore_paused))


def _cap_name(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"
