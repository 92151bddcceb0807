"""The first child: it enters the container's namespaces and forks the init.

pyoci (the parent) stays in the host's namespaces: it must write id maps, run the
runtime-namespace hooks and clean up. So it forks this child, which
  1. waits until the parent has put it in the container's cgroup (a cgroup
     namespace made later must be rooted there);
  2. joins the namespaces the config names by path (the user namespace first);
  3. unshares a new user namespace, and waits while the parent writes its maps;
  4. unshares the other new namespaces (pid and time ones apply to children only);
  5. forks the init, which is pid 1 of the new pid namespace, reports its pid, exits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

from . import sync
from .errors import PyociError
from .linux import namespaces
from .linux import syscalls as sc
from .spec import Spec


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


def run_bootstrap(spec: Spec, channel: sync.Channel, init: Callable[[], NoReturn]) -> NoReturn:
    """Body of the first child; never returns."""
    try:
        channel.expect(sync.GO)
        joined = []
        for ns_type in namespaces.JOIN_ORDER:
            ns = spec.linux.namespace(ns_type)
            if ns is not None and ns.path:
                joined.append((ns_type, ns.path, namespaces.open_namespace(ns_type, ns.path)))
        for ns_type, path, fd in joined:
            namespaces.join(ns_type, fd, path)
            os.close(fd)

        new = [ns.type for ns in spec.linux.namespaces if not ns.path]
        if "user" in new:
            sc.unshare(sc.CLONE_NEWUSER)
            channel.send(sync.USERNS_READY)
            channel.expect(sync.MAPPED)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
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
            init()
        channel.send(sync.PID, pid=pid)
        os._exit(0)
    except PyociError as err:
        _report(channel, str(err))
    except BaseException as err:  # anything else is a bug, but must still be reported
        _report(channel, f"bootstrap: {type(err).__name__}: {err}")
    os._exit(1)


def _report(channel: sync.Channel, message: str) -> None:
    try:
        channel.send(sync.ERROR, message=message)
    except OSError:
        pass
