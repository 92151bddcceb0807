"""The OCI operations: create, start, state, kill, delete, and run (create + start + wait).

One function per operation. Each takes the Context built by the CLI and raises
PyociError with a message a user (or an engine matching on words) can act on.
"""

from __future__ import annotations

import json
import os
import select
import signal
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from . import sync
    from .bootstrap import PreparedMounts
    from .options import CreateOptions, Created, RunOptions
    from .spec import Spec

# start, state, kill and delete never build a container: what only create needs
# (the spec's dataclasses, the init, hooks, the sync channel) is imported inside the
# functions that use it, so those commands start in a fraction of the time.

from .context import Context
from .errors import ConfigError, PyociError, WrongState
from .linux import proc
from .linux import pidfd
from .state import (ContainerDir, ContainerState, DamagedState, StateRoot, check_id, init_alive,
                    public_state, rfc3339_now, status_of, write_pid_file)

KILL_WAIT_SECONDS = 10.0


# --- loading the bundle -------------------------------------------------------------

def read_config(bundle: str) -> dict[str, Any]:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise ConfigError(f"config.json: cannot read {path}: {os.strerror(err.errno or 0).lower()}") from None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise ConfigError(f"config.json: invalid JSON: {err}") from None


def load_bundle(bundle: str) -> tuple[dict[str, Any], Spec]:
    """config.json as a Spec, checked enough to run: the typed loader and the cheap
    semantic checks. Only when the loader refuses something is the (slow to import)
    JSON Schema consulted, to name the problem the way `pyoci validate` does."""
    from .spec import load_spec
    from .validate import schema_errors, semantic_errors

    doc = read_config(bundle)
    try:
        spec = load_spec(doc)
    except ConfigError as err:
        problems = schema_errors(doc)
        raise ConfigError(f"config.json: {problems[0] if problems else err}") from None
    problems = semantic_errors(doc, bundle)
    if problems:
        raise ConfigError(f"config.json: {problems[0]}")
    if spec.process is None:
        raise ConfigError("config.json: process: is required to create a container")
    if spec.linux.namespace("mount") is None:
        raise ConfigError("config.json: linux.namespaces: a mount namespace is required")
    return doc, spec


def rootfs_path(bundle: str, spec: Spec) -> str:
    path = os.path.join(bundle, spec.root.path)
    if not os.path.isdir(path):
        raise ConfigError(f"config.json: root.path: {path} is not a directory")
    return os.path.realpath(path)


# --- create ---------------------------------------------------------------------------

def create(ctx: Context, container_id: str, opts: CreateOptions) -> Created:
    from . import hooks
    from .linux import idmap

    bundle = os.path.abspath(opts.bundle)
    store = StateRoot(ctx.root)
    check_id(container_id)
    doc, spec = load_bundle(bundle)
    rootfs = rootfs_path(bundle, spec)
    assert spec.process is not None
    if spec.process.terminal and not opts.console_socket and opts.console_fd is None:
        raise ConfigError("cannot allocate tty if pyoci will detach without setting console socket")
    if opts.console_socket and not spec.process.terminal:
        raise ConfigError("cannot use console socket if pyoci will not detach or allocate tty")

    cdir = store.create(container_id)
    state = ContainerState(id=container_id, bundle=bundle, rootfs=rootfs, created=rfc3339_now(),
                           annotations=spec.annotations, config=doc)
    cgroup = None
    console_sock = None
    try:
        console_fd = opts.console_fd if opts.console_fd is not None else -1
        if opts.console_socket:
            from .console import connect_socket
            console_sock = connect_socket(opts.console_socket)
            console_fd = console_sock.fileno()
        cgroup = _cgroup_for(ctx, container_id, spec)
        state.cgroup = cgroup.to_state()
        # Recorded before anything is made, so a create killed half-way stays deletable.
        cdir.save(state)
        os.mkfifo(cdir.fifo_path, 0o622)
        # Writable by the container's user whatever our umask: its init opens it after
        # switching to that user.
        os.chmod(cdir.fifo_path, 0o622)
        # Owned by the container's root, as runc does, so a user namespace's root
        # can open it whatever the mode.
        idmap.chown_to_container_root(cdir.fifo_path, spec)
        fifo_fd = os.open(cdir.fifo_path, os.O_PATH | os.O_CLOEXEC)
        resources, late_pids_limit = split_late_pids_limit(spec.linux.resources)
        extra_fds = pass_listen_fds(spec) + opts.preserve_fds
        pass_notify_socket(spec)
        # The bootstrap child prepares the init while the cgroup is made (_fork_bootstrap).
        pid, channel = _fork_bootstrap(ctx, state, spec, fifo_fd, extra_fds, console_fd, opts)
        try:
            cgroup.create(resources,
                          linux_devices=[(d.type, d.major, d.minor) for d in spec.linux.devices])
            state.cgroup = cgroup.to_state()
            ctx.log.debug("cgroup created")
            _drive_bootstrap(ctx, state, spec, cgroup, pid, channel)
        finally:
            channel.close()
            _reap(pid)
        os.close(fifo_fd)
        if late_pids_limit is not None:
            cgroup.update({"pids": {"limit": late_pids_limit}})
            state.cgroup = cgroup.to_state()
        state.created_ok = True
        cdir.save(state)
        if opts.pid_file:
            write_pid_file(opts.pid_file, state.pid)
    except BaseException as err:
        _undo_create(cdir, state, cgroup)
        if isinstance(err, hooks.HookFailed):
            # runtime.md lifecycle: a failed create hook goes on to destruction,
            # which ends with the poststop hooks.
            hooks.run_hooks(spec.hooks.poststop, "poststop",
                            hooks.hook_state(container_id, 0, bundle, spec.annotations, "stopped"),
                            warn=ctx.log.warning)
        raise
    finally:
        if console_sock is not None:
            console_sock.close()
    from .options import Created
    return Created(cdir, state, spec)


def _cgroup_for(ctx: Context, container_id: str, spec: Spec):  # -> cgroups.Cgroup
    from .cgroups import cgroup_for
    return cgroup_for(container_id, spec.linux.cgroups_path, systemd=ctx.systemd_cgroup,
                      rootless=ctx.rootless)


def split_late_pids_limit(resources: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int | None]:
    """A pids limit of 0 or 1 is valid (config-linux.md), but written at once it would stop
    the runtime's own first child from forking the init inside the cgroup: such a limit
    is set once the init exists and that child is gone."""
    limit = ((resources or {}).get("pids") or {}).get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 1:
        return resources, None
    early = dict(resources or {})
    early.pop("pids")
    return early, limit


def cgroup_of(state: ContainerState):  # -> cgroups.Cgroup | None
    if not state.cgroup:
        return None
    from .cgroups import cgroup_from_state
    return cgroup_from_state(state.cgroup)


def pass_listen_fds(spec: Spec) -> int:
    """Socket activation (sd_listen_fds): fds 3.. given to us go on to the container,
    before the --preserve-fds ones, with LISTEN_FDS and LISTEN_PID=1 as runc sets them."""
    count = os.environ.get("LISTEN_FDS", "")
    if not count.isdigit() or os.environ.get("LISTEN_PID", str(os.getpid())) != str(os.getpid()):
        return 0
    assert spec.process is not None
    spec.process.env = [e for e in spec.process.env
                        if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
    spec.process.env += [f"LISTEN_FDS={count}", "LISTEN_PID=1"]
    return int(count)


NOTIFY_SOCKET_IN_CONTAINER = "/run/notify/notify.sock"


def pass_notify_socket(spec: Spec) -> None:
    """sd_notify pass-through (podman --sdnotify=container): the caller's NOTIFY_SOCKET is
    bound into the container and named there, so READY=1 goes straight to the caller's
    listener. runc proxies it through a socket of its own instead; a bind needs no
    process of ours to stay behind. Abstract sockets (@name) cannot be bound and are
    left alone."""
    host = os.environ.get("NOTIFY_SOCKET", "")
    if not host.startswith("/") or not os.path.exists(host):
        return
    from .spec import Mount
    assert spec.process is not None
    spec.mounts.append(Mount(destination=NOTIFY_SOCKET_IN_CONTAINER, type="bind", source=host,
                             options=["bind", "nosuid", "nodev", "noexec"]))
    spec.process.env = [e for e in spec.process.env if not e.startswith("NOTIFY_SOCKET=")]
    spec.process.env.append(f"NOTIFY_SOCKET={NOTIFY_SOCKET_IN_CONTAINER}")


def _fork_bootstrap(ctx: Context, state: ContainerState, spec: Spec, fifo_fd: int,
                    preserve_fds: int, console_fd: int = -1,
                    opts: CreateOptions | None = None) -> tuple[int, sync.Channel]:
    """Fork the bootstrap child. Until the parent's go it imports the init's modules and
    prepares what needs no cgroup or namespace (init.prepare_early): that runs while the
    parent makes the cgroup, whose first cgroup.procs write alone waits for an RCU
    grace period."""
    from . import sync

    parent, child = sync.channel_pair()
    if ctx.log.debugging:
        child.tracing = True
        parent.on_debug = ctx.log.debug
        ctx.log.debug("namespaces: " + ", ".join(
            f"{ns.type} (join {ns.path})" if ns.path else f"{ns.type} (new)"
            for ns in spec.linux.namespaces))

    def prepare_init() -> Callable[[PreparedMounts], NoReturn]:
        from .init import InitPlan, prepare_early, run_init
        plan = InitPlan(spec=spec, container_id=state.id, bundle=state.bundle,
                        rootfs=state.rootfs, channel=child, fifo_fd=fifo_fd,
                        preserve_fds=preserve_fds, console_fd=console_fd,
                        no_pivot=bool(opts and opts.no_pivot),
                        no_new_keyring=bool(opts and opts.no_new_keyring))
        prepare_early(plan)
        return lambda mounts: run_init(plan, mounts)

    pid = os.fork()
    if pid == 0:
        parent.close()
        from . import bootstrap  # and with it ctypes: in the child, alongside the parent
        bootstrap.run_bootstrap(spec, child, state.bundle, prepare_init)
    child.close()
    return pid, parent


def _drive_bootstrap(ctx: Context, state: ContainerState, spec: Spec, cgroup, pid: int,
                     parent: sync.Channel) -> None:
    """Put the bootstrap child in the cgroup and drive it over the sync channel until
    the init is ready."""
    from . import hooks, sync
    from .linux import idmap

    cgroup.add_process(pid)
    parent.send(sync.GO)
    user_ns = spec.linux.namespace("user")
    if user_ns is not None and not user_ns.path:
        parent.expect(sync.USERNS_READY)
        ctx.log.debug("user namespace made; writing its id maps")
        idmap.write_maps(pid, spec.linux.uid_mappings, spec.linux.gid_mappings)
        parent.send(sync.MAPPED)
    # The init may speak before the bootstrap child reports its pid: both hold the
    # channel. Keep what comes early and handle it once the pid is known.
    early = []
    message = parent.recv()
    while message["type"] != sync.PID:
        early.append(message)
        message = parent.recv()
    state.pid = message["pid"]
    state.start_time = proc.start_time(state.pid) or 0
    ctx.log.debug(f"init started as pid {state.pid}")
    while True:
        message = early.pop(0) if early else parent.recv()
        if message["type"] == sync.READY:
            break
        if message["type"] == sync.HOOKS_REQUEST:
            hook_state = hooks.hook_state(state.id, state.pid, state.bundle,
                                          state.annotations, "created")
            hooks.run_hooks(spec.hooks.prestart, "prestart", hook_state)
            ctx.log.debug(f"prestart hooks done ({len(spec.hooks.prestart)})")
            hooks.run_hooks(spec.hooks.create_runtime, "createRuntime", hook_state)
            ctx.log.debug(f"createRuntime hooks done ({len(spec.hooks.create_runtime)})")
            hooks.run_hooks_in_namespaces(spec.hooks.create_container, "createContainer",
                                          hook_state, state.pid)
            ctx.log.debug(f"createContainer hooks done ({len(spec.hooks.create_container)})")
            parent.send(sync.HOOKS_DONE)
    ctx.log.debug("init ready")


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _undo_create(cdir: ContainerDir, state: ContainerState, cgroup) -> None:
    """As if create had never been called: no process, cgroup or state left."""
    if state.pid:
        _kill_and_wait(state, signal.SIGKILL)
    if cgroup is not None:
        try:
            cgroup.signal_all(signal.SIGKILL)
            cgroup.destroy()
        except PyociError:
            pass
    cdir.remove()


# --- start ----------------------------------------------------------------------------

def start(ctx: Context, container_id: str) -> None:
    cdir = StateRoot(ctx.root).open(container_id)
    try:
        state = cdir.load()
        status = current_status(cdir, state)
        if status != "created":
            raise WrongState(_start_refusal(status))
        assert state is not None
        release(cdir, state)
        run_poststart(ctx, cdir, state)
    finally:
        cdir.close()


def _start_refusal(status: str) -> str:
    return {"stopped": "cannot start a container that has stopped",
            "running": "cannot start an already running container",
            "paused": "cannot start a paused container, resume it instead",
            "creating": "cannot start a container that is still being created"}.get(
                status, f"cannot start a container in state {status}")


def release(cdir: ContainerDir, state: ContainerState) -> None:
    """Open the exec fifo: the init, blocked on its other end, goes on to execve."""
    from . import hooks

    # The pidfd before the fifo: opening the fifo lets the init go on, and a short
    # program can run, exit and be reaped before a pidfd opened after it.
    process_fd = _init_pidfd(state)
    if process_fd is None:
        raise PyociError("cannot start container: its init exited before start")
    try:
        fifo = os.open(cdir.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except BaseException:
        os.close(process_fd)
        raise
    try:
        poller = select.poll()
        poller.register(fifo, select.POLLIN)
        poller.register(process_fd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            answer = os.read(fifo, 4096) if fifo in events else b""
            if answer.startswith(b"E"):
                # The init's startContainer hooks failed; it exits without the program.
                raise hooks.HookFailed(answer[1:].decode(errors="replace"))
            if answer:
                break
            if process_fd in events or fifo in events:
                raise PyociError("cannot start container: its init exited before start")
    finally:
        os.close(fifo)
        os.close(process_fd)
    os.unlink(cdir.fifo_path)


def run_poststart(ctx: Context, cdir: ContainerDir, state: ContainerState) -> None:
    from . import hooks

    spec_hooks = state.config.get("hooks") or {}
    if not spec_hooks.get("poststart"):
        return
    from .spec import load_spec
    hook_list = load_spec(state.config).hooks.poststart
    try:
        hooks.run_hooks(hook_list, "poststart",
                        hooks.hook_state(state.id, state.pid, state.bundle, state.annotations,
                                         "running"))
    except PyociError:
        # runtime.md: a failing poststart hook stops the container.
        _kill_and_wait(state, signal.SIGKILL)
        raise


# --- state, list ----------------------------------------------------------------------

def current_status(cdir: ContainerDir, state: ContainerState | None) -> str:
    frozen = False
    if state is not None and state.created_ok and init_alive(state):
        cgroup = cgroup_of(state)
        frozen = cgroup is not None and cgroup.is_frozen()
    return status_of(cdir, state, frozen)


def container_state(ctx: Context, container_id: str) -> dict[str, Any]:
    cdir = StateRoot(ctx.root).open(container_id, exclusive=False)
    try:
        state = cdir.load()
        if state is None:
            # Half-made by a create that is still running or was killed.
            return {"ociVersion": "1.3.0", "id": container_id, "status": "creating", "pid": 0,
                    "bundle": "", "annotations": {}}
        return public_state(state, current_status(cdir, state))
    finally:
        cdir.close()


def list_states(ctx: Context) -> list[dict[str, Any]]:
    states = []
    store = StateRoot(ctx.root)
    for container_id in store.ids():
        try:
            states.append(container_state(ctx, container_id))
        except PyociError:
            continue  # deleted while we listed
    return states


# --- kill -----------------------------------------------------------------------------

def kill(ctx: Context, container_id: str, sig: int, all_processes: bool = False) -> None:
    cdir = StateRoot(ctx.root).open(container_id, exclusive=False)
    try:
        state = cdir.load()
        status = current_status(cdir, state)
        if all_processes:
            cgroup = cgroup_of(state) if state else None
            if cgroup is not None:
                cgroup.signal_all(sig)
                return
            if status == "stopped":
                return
        if status not in ("created", "running", "paused"):
            raise WrongState("container not running")
        assert state is not None
        _signal_init(state, sig)
        if sig == signal.SIGKILL and status == "paused":
            cgroup = cgroup_of(state)
            if cgroup is not None:
                cgroup.thaw()
    finally:
        cdir.close()


def _init_pidfd(state: ContainerState) -> int | None:
    """A pidfd of the container's init, checked against the recorded start time after
    it is open (so never a recycled pid's); None if the init is gone or a zombie."""
    try:
        process_fd = pidfd.open_pidfd(state.pid)
    except PyociError:
        return None
    if init_alive(state):
        return process_fd
    os.close(process_fd)
    return None


def _signal_init(state: ContainerState, sig: int) -> None:
    process_fd = _init_pidfd(state)
    if process_fd is None:
        raise WrongState("container not running")
    try:
        pidfd.send_signal(process_fd, sig)
    finally:
        os.close(process_fd)


def _kill_and_wait(state: ContainerState, sig: int, timeout: float = KILL_WAIT_SECONDS) -> bool:
    """Signal the init and wait until it has exited; True if it is gone."""
    process_fd = _init_pidfd(state)
    if process_fd is None:
        return True
    try:
        try:
            pidfd.send_signal(process_fd, sig)
        except PyociError:
            return True
        return bool(select.select([process_fd], [], [], timeout)[0])
    finally:
        os.close(process_fd)


# --- delete ---------------------------------------------------------------------------

def delete(ctx: Context, container_id: str, force: bool = False) -> None:
    store = StateRoot(ctx.root)
    try:
        cdir = store.open(container_id)
    except PyociError:
        if force:
            return
        raise
    try:
        try:
            state = cdir.load()
        except DamagedState:
            if not force:
                raise
            cdir.remove()
            return
        if state is None:
            # A create that died before recording anything: only the folder is left.
            if not force:
                raise WrongState(f"cannot delete container {container_id} that is being created; use --force")
            cdir.remove()
            return
        status = current_status(cdir, state)
        if status in ("running", "paused") and not force:
            raise WrongState(f"cannot delete container {container_id} that is not stopped: {status}")
        if status == "creating" and not force:
            raise WrongState(f"cannot delete container {container_id} that is being created; use --force")
        destroy(ctx, cdir, state)
    finally:
        cdir.close()


def destroy(ctx: Context, cdir: ContainerDir, state: ContainerState) -> None:
    """Kill what is left, remove the cgroup and the state, run poststop hooks."""
    cgroup = cgroup_of(state)
    if cgroup is not None:
        # Thawed first: a frozen process cannot die.
        if cgroup.is_frozen():
            cgroup.signal_all(signal.SIGKILL)
            cgroup.thaw()
    if init_alive(state):
        _kill_and_wait(state, signal.SIGKILL)
    if cgroup is not None:
        cgroup.signal_all(signal.SIGKILL)
        cgroup.destroy()
    poststop = (state.config.get("hooks") or {}).get("poststop")
    cdir.remove()
    if poststop:
        from . import hooks
        from .spec import load_spec
        hooks.run_hooks(load_spec(state.config).hooks.poststop, "poststop",
                        hooks.hook_state(state.id, 0, state.bundle, state.annotations, "stopped"),
                        warn=ctx.log.warning)


# --- run ------------------------------------------------------------------------------

def run(ctx: Context, container_id: str, opts: RunOptions) -> int:
    """create + start; in the foreground, wait and return the program's exit status."""
    if not opts.detach and not opts.no_subreaper:
        # The init's parent (the bootstrap child) exits: make it ours to wait for.
        from .linux import syscalls as sc
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1, step="become a subreaper")
    master = -1
    receiver = None
    if not opts.detach and not opts.console_socket and _wants_terminal(opts.bundle):
        # No engine to take the pty: it comes to us and we relay it (tty_relay.py).
        import socket
        receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        opts.console_fd = sender.fileno()
        try:
            created = create(ctx, container_id, opts)
        finally:
            sender.close()
    else:
        created = create(ctx, container_id, opts)
    cdir, state = created.cdir, created.state
    try:
        if receiver is not None:
            from .console import recv_master
            with receiver:
                master = recv_master(receiver)
        release(cdir, state)
        run_poststart(ctx, cdir, state)
    except BaseException:
        destroy(ctx, cdir, state)
        raise
    if opts.detach:
        cdir.close()
        return 0
    # Let a `state` or `kill` from another shell through while we wait.
    cdir.close()
    if master >= 0:
        from .tty_relay import relay
        status = relay(master, state.pid)
        os.close(master)
    else:
        status = wait_forwarding_signals(state.pid)
    if not opts.keep:
        cdir = StateRoot(ctx.root).open(container_id)
        try:
            destroy(ctx, cdir, state)
        finally:
            cdir.close()
    return status


def _wants_terminal(bundle: str) -> bool:
    try:
        return bool((read_config(os.path.abspath(bundle)).get("process") or {}).get("terminal"))
    except PyociError:
        return False  # create reports it


def wait_forwarding_signals(pid: int) -> int:
    """Reap children until `pid` exits, passing every signal we get on to it."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError):
            pass
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
