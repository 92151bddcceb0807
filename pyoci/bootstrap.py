"""The first child: it enters the container's namespaces and forks the init.

pyoci (the parent) stays in the host's namespaces: it must write id maps, run the
runtime-namespace hooks and clean up. So it forks this child, which
  0. prepares what needs neither the cgroup nor the namespaces (the init's modules,
     the seccomp program) while the parent makes the cgroup: both take milliseconds,
     and a machine has more than one CPU;
  1. waits until the parent has put it in the container's cgroup (a cgroup
     namespace made later must be rooted there);
  2. while it still has the host's privileges: prepares idmapped mounts (detached
     trees the init moves into place), and raises the rlimits and oom_score_adj
     that a process in a user namespace could no longer raise itself;
  3. joins the namespaces the config names by path (the user namespace first);
  4. unshares a new user namespace, and waits while the parent writes its maps;
  5. unshares the other new namespaces, which then belong to the new user namespace
     (pid and time ones apply to children only);
  6. forks the init, which is pid 1 of the new pid namespace, reports its pid, exits.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import NoReturn

from . import sync
from .errors import PyociError
from .linux import namespaces
from .linux import syscalls as sc
from .spec import Rlimit, Spec

# Mount index in spec.mounts -> descriptor of a detached, idmapped tree.
PreparedMounts = dict[int, int]


def write_time_offsets(spec: Spec) -> None:
    """Must happen after unshare(CLONE_NEWTIME) and before the namespace's first process."""
    if not spec.linux.time_offsets:
        return
    lines = "".join(f"{clock} {off.secs} {off.nanosecs}\n"
                    for clock, off in spec.linux.time_offsets.items())
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)
    except OSError as err:
        raise PyociError(f"write time offsets: {os.strerror(err.errno or 0).lower()}") from None


def uses_user_namespace(spec: Spec) -> bool:
    return spec.linux.namespace("user") is not None


def raise_limits_before_user_ns(spec: Spec) -> None:
    """Raise what only the host's CAP_SYS_RESOURCE may raise, while we still have it.

    Only hard limits above the current ones are raised here (the soft limit is left
    alone, so this process is not constrained); the init sets the exact values later,
    which then only lowers them. A lowered oom_score_adj is inherited through fork.
    """
    process = spec.process
    if process is None:
        return
    from .linux import process_attrs
    raised = []
    for limit in process.rlimits:
        number = process_attrs.RLIMITS.get(limit.type)
        if number is None:
            continue  # the init reports the unknown name
        soft, hard = resource.getrlimit(number)
        if _above(limit.hard, hard):
            raised.append(Rlimit(type=limit.type, soft=_as_u64(soft), hard=limit.hard))
    process_attrs.apply_rlimits(raised)
    if process.oom_score_adj is not None:
        process_attrs.set_oom_score_adj(process.oom_score_adj)


_U64_MAX = 2**64 - 1


def _as_u64(value: int) -> int:
    return _U64_MAX if value == resource.RLIM_INFINITY else value


def _above(wanted: int, current: int) -> bool:
    if current == resource.RLIM_INFINITY:
        return False
    return wanted >= _U64_MAX or wanted < 0 or wanted > current


def prepare_idmapped_mounts(spec: Spec, bundle: str) -> PreparedMounts:
    """Detached idmapped trees for the mounts that ask for one (host side of the work)."""
    prepared: PreparedMounts = {}
    for index, m in enumerate(spec.mounts):
        wants = "idmap" in m.options or "ridmap" in m.options
        if not (wants or m.uid_mappings or m.gid_mappings):
            continue
        try:
            prepared[index] = _idmapped_tree(spec, bundle, index)
        except BaseException:
            for fd in prepared.values():
                os.close(fd)
            raise
    return prepared


def _idmapped_tree(spec: Spec, bundle: str, index: int) -> int:
    from .linux import idmapped
    m = spec.mounts[index]
    where = f"mounts[{index}] ({m.destination})"
    if not ("bind" in m.options or "rbind" in m.options or m.type == "bind"):
        raise PyociError(f"{where}: idmapped mounts are supported for bind mounts only")
    if os.geteuid() != 0:
        raise PyociError(f"{where}: an idmapped mount needs root on the host "
                         "(CAP_SYS_ADMIN over the source's file system)")
    uid_mappings = m.uid_mappings or spec.linux.uid_mappings
    gid_mappings = m.gid_mappings or spec.linux.gid_mappings
    if not uid_mappings or not gid_mappings:
        raise PyociError(f"{where}: idmap needs uidMappings and gidMappings on the mount "
                         "or a user namespace with mappings")
    source = os.path.join(bundle, m.source or "")
    if not os.path.exists(source):
        raise PyociError(f"{where}: source {source} does not exist")
    recursive = "ridmap" in m.options or "rbind" in m.options
    return idmapped.idmapped_tree(source, uid_mappings, gid_mappings, recursive)


def join_namespaces(spec: Spec) -> None:
    """setns into every namespace given by path, after opening them all: once in the
    mount namespace, the other paths might no longer resolve."""
    opened = []
    try:
        for ns_type in namespaces.JOIN_ORDER:
            ns = spec.linux.namespace(ns_type)
            if ns is not None and ns.path:
                opened.append((ns_type, ns.path, namespaces.open_namespace(ns_type, ns.path)))
        for ns_type, path, fd in opened:
            namespaces.join(ns_type, fd, path)
            if ns_type == "user":
                # The credentials of the namespace's root, as runc does after joining.
                _become_root(f"user namespace {path}")
    finally:
        for _, _, fd in opened:
            os.close(fd)


def _become_root(where: str) -> None:
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as err:
        raise PyociError(f"become root in {where}: {os.strerror(err.errno or 0).lower()} "
                         "(is uid/gid 0 mapped there?)") from None


def run_bootstrap(spec: Spec, channel: sync.Channel, bundle: str,
                  prepare: Callable[[], Callable[[PreparedMounts], NoReturn]]) -> NoReturn:
    """Body of the first child; never returns. `prepare` runs before the parent's go
    and returns the init's body."""
    try:
        init = prepare()
        early_error = None
    except BaseException as err:  # told once the parent listens, after its go
        early_error = err
    try:
        channel.expect(sync.GO)
        if early_error is not None:
            raise early_error
        prepared = prepare_idmapped_mounts(spec, bundle)
        if uses_user_namespace(spec):
            raise_limits_before_user_ns(spec)
        join_namespaces(spec)

        new = [ns.type for ns in spec.linux.namespaces if not ns.path]
        if "user" in new:
            sc.unshare(sc.CLONE_NEWUSER)
            channel.send(sync.USERNS_READY)
            channel.expect(sync.MAPPED)
            _become_root("the new user namespace")
        flags = 0
        for ns_type in new:
            if ns_type != "user":
                flags |= namespaces.CLONE_FLAG[ns_type]
        if flags:
            sc.unshare(flags)
        if "time" in new:
            write_time_offsets(spec)

        pid = os.fork()
        if pid == 0:
            init(prepared)
        channel.send(sync.PID, pid=pid)
        os._exit(0)
    except BaseException as err:  # a bug too must reach the parent, as one line
        channel.report_failure("bootstrap", err)
    os._exit(1)
