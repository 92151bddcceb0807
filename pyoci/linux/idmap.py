"""uid_map and gid_map of a process in a new user namespace, written by its parent.

Who may write which map (user_namespaces(7)):
- a writer with CAP_SETUID/CAP_SETGID over the parent namespace (root on the host, or
  root inside a user namespace whose ranges cover the map): any map, in one write;
- an unprivileged writer: only its own uid, or its own gid after `setgroups` of the
  process is set to "deny" (else dropping groups with setgroups(2) inside could grant
  access a negative group permission refuses);
- anything else goes through the setuid helpers newuidmap/newgidmap (Debian's `uidmap`),
  which check the ranges against /etc/subuid and /etc/subgid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import PyociError
from ..spec import IdMapping, Spec

HELPERS = {"uid_map": "newuidmap", "gid_map": "newgidmap"}


def map_text(mappings: Sequence[IdMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def is_own_id_only(mappings: Sequence[IdMapping], own: int) -> bool:
    """The one map an unprivileged process may write itself: its own id, once."""
    return len(mappings) == 1 and mappings[0].host_id == own and mappings[0].size == 1


def _write_proc(pid: int, name: str, text: str) -> None:
    path = f"/proc/{pid}/{name}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            # The kernel takes the whole map in one write.
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise PyociError(f"write {name} of the container: "
                         f"{os.strerror(err.errno or 0).lower()}") from None


def _run_helper(pid: int, name: str, mappings: Sequence[IdMapping]) -> None:
    # Only rootless containers with several ranges get here: keep the imports off
    # every other create's start-up.
    import shutil
    import subprocess

    helper = HELPERS[name]
    binary = shutil.which(helper) or shutil.which(helper, path="/usr/bin:/bin:/usr/sbin")
    if binary is None:
        raise PyociError(f"write {name} of the container: an unprivileged user can map only "
                         f"its own id without {helper} (install the uidmap package)")
    argv = [binary, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        why = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise PyociError(f"write {name} of the container with {helper}: {why}")


def write_maps(pid: int, uid_mappings: Sequence[IdMapping],
               gid_mappings: Sequence[IdMapping]) -> None:
    """Write both maps of `pid`, which has just unshared its user namespace."""
    privileged = os.geteuid() == 0
    for name, mappings, own in (("uid_map", uid_mappings, os.geteuid()),
                                ("gid_map", gid_mappings, os.getegid())):
        if privileged:
            _write_proc(pid, name, map_text(mappings))
        elif is_own_id_only(mappings, own):
            if name == "gid_map":
                _write_proc(pid, "setgroups", "deny")
            _write_proc(pid, name, map_text(mappings))
        else:
            _run_helper(pid, name, mappings)


def host_id(mappings: Sequence[IdMapping], container_id: int) -> int | None:
    """The host id a container id maps to, or None when it is not mapped."""
    for m in mappings:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None


def chown_to_container_root(path: str, spec: Spec) -> None:
    """Give `path` to the host ids of the container's root (a new user namespace only)."""
    user_ns = spec.linux.namespace("user")
    if user_ns is None or user_ns.path:
        return
    uid = host_id(spec.linux.uid_mappings, 0)
    gid = host_id(spec.linux.gid_mappings, 0)
    if uid is None and gid is None:
        return
    try:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    except PermissionError:
        pass  # rootless: the file is already ours, and ours is the container's root
