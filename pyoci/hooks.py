"""Running lifecycle hooks: each gets the container's state on stdin.

Where and when each kind runs is the caller's decision (init.py, lifecycle.py):
  prestart, createRuntime   pyoci, in the runtime's namespaces, during create
  createContainer           a helper forked by pyoci that joins the init's namespaces
                            (all but pid, so the hook's pid means the same in its /proc,
                            which is still the host's before pivot_root), during create
  startContainer            the init, in the container, when `start` opens the fifo
  poststart                 pyoci, in `start`, after the program was released
  poststop                  pyoci, in `delete`, and after a create a hook failed
This module runs a list of hooks and turns a failure into a HookFailed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

    from .spec import Hook

from . import OCI_VERSION
from .errors import PyociError


class HookFailed(PyociError):
    """A hook exited non-zero, was killed, overran its timeout or could not start."""


def hook_state(container_id: str, pid: int, bundle: str, annotations: dict[str, str],
               status: str) -> dict[str, Any]:
    return {"ociVersion": OCI_VERSION, "id": container_id, "status": status, "pid": pid,
            "bundle": bundle, "annotations": annotations}


def run_hooks(hook_list: list[Hook], phase: str, state: dict[str, Any],
              warn: Callable[[str], None] | None = None) -> None:
    """Run each hook in order. The first failure stops the list and is raised, unless
    `warn` is given (poststop): then every failure is passed to it and the rest still run."""
    if not hook_list:
        return
    # Only containers with hooks pay for subprocess.
    import subprocess

    payload = json.dumps(state).encode()
    for index, hook in enumerate(hook_list):
        try:
            _run_one(subprocess, hook, f"{phase} hook #{index} ({hook.path})", payload)
        except HookFailed as err:
            if warn is None:
                raise
            warn(str(err))


def _run_one(subprocess: Any, hook: Hook, where: str, payload: bytes) -> None:
    argv = hook.args or [hook.path]
    try:
        proc = subprocess.Popen(argv, executable=hook.path, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=_env(hook.env), close_fds=True, cwd="/")
    except OSError as err:
        raise HookFailed(f"{where}: {os.strerror(err.errno or 0).lower()}") from None
    try:
        _, stderr = proc.communicate(payload, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookFailed(f"{where}: timed out after {hook.timeout}s, killed") from None
    except BrokenPipeError:
        # A hook need not read its stdin.
        stderr = proc.stderr.read() if proc.stderr else b""
        proc.wait()
    if proc.returncode != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()
        reason = (f"exit status {proc.returncode}" if proc.returncode > 0
                  else f"killed by signal {-proc.returncode}")
        suffix = f": {detail[-1]}" if detail else ""
        raise HookFailed(f"{where}: {reason}{suffix}")


def run_hooks_in_namespaces(hook_list: list[Hook], phase: str, state: dict[str, Any],
                            pid: int) -> None:
    """run_hooks from a child that joined the namespaces of `pid` (user first, mount
    last) except its pid namespace. The failure comes back over a pipe."""
    if not hook_list:
        return
    import subprocess  # noqa: F401  before the fork: the child may not see our stdlib
    from .linux import namespaces

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(read_end)
        code = 0
        try:
            # Not the pid namespace: the hook's $$ must mean the same in the host's
            # /proc, which is what the init still has mounted before pivot_root.
            namespaces.join_namespaces_of(pid, skip=("pid",))
            run_hooks(hook_list, phase, state)
        except BaseException as err:  # everything goes back to the parent as text
            os.write(write_end, str(err).encode()[:4000] or b"hook failed")
            code = 1
        os._exit(code)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as f:
            message = f.read().decode(errors="replace")
    finally:
        os.waitpid(child, 0)
    if message:
        raise HookFailed(message)


def _env(entries: list[str] | None) -> dict[str, str]:
    env = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    return env
