"""Rootless operation: who counts as rootless, and where such a user keeps state.

Rootless is what runc calls it: pyoci runs without the host's root, either as an
ordinary user, or as root inside a user namespace someone else made (rootless podman
runs its runtime that way). Then cgroups are used only where delegated, and the state
lives in the user's runtime directory. Imported on every call: standard library only.
"""

from __future__ import annotations

import os
import stat

from .errors import PyociError

# uid_map of the initial user namespace: every id maps to itself.
_INITIAL_MAP = ("0", "0", "4294967295")


def in_user_namespace() -> bool:
    """True inside any user namespace but the host's."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = f.read().split("\n")
    except OSError:
        return False
    return tuple(lines[0].split()) != _INITIAL_MAP or bool(lines[1:] and lines[1].strip())


def is_rootless(setting: str) -> bool:
    """--rootless true|false|auto; auto: not root, or root of a user namespace."""
    value = setting.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    return os.geteuid() != 0 or in_user_namespace()


def default_root(rootless: bool) -> str:
    """/run/pyoci for root; $XDG_RUNTIME_DIR/pyoci for rootless (runc's rule), else
    /tmp/pyoci-<uid> if that is safely ours (a directory another user made first
    could be used to read or replace our state)."""
    if not rootless:
        return "/run/pyoci"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "pyoci")
    if os.geteuid() == 0:
        return "/run/pyoci"  # root of a user namespace without a runtime directory
    fallback = f"/tmp/pyoci-{os.geteuid()}"
    try:
        st = os.lstat(fallback)
    except FileNotFoundError:
        return fallback
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise PyociError(f"XDG_RUNTIME_DIR is not set and {fallback} is not a private directory "
                         "of this user; set XDG_RUNTIME_DIR or pass --root")
    return fallback
