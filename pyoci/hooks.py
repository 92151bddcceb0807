"""Running lifecycle hooks: each gets the container's state on stdin.

Where and when each kind runs is the caller's decision (init.py, lifecycle.py);
this module only runs a list of hooks and turns a failure into a PyociError.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import OCI_VERSION
from .errors import PyociError
from .spec import Hook


def hook_state(container_id: str, pid: int, bundle: str, annotations: dict[str, str],
               status: str) -> dict[str, Any]:
    return {"ociVersion": OCI_VERSION, "id": container_id, "status": status, "pid": pid,
            "bundle": bundle, "annotations": annotations}


def run_hooks(hook_list: list[Hook], phase: str, state: dict[str, Any]) -> None:
    """Run each hook in order; the first failure stops the list and is raised."""
    if not hook_list:
        return
    # Only containers with hooks pay for subprocess.
    import subprocess

    payload = json.dumps(state).encode()
    for index, hook in enumerate(hook_list):
        where = f"{phase} hook #{index} ({hook.path})"
        argv = hook.args or [hook.path]
        try:
            proc = subprocess.Popen(argv, executable=hook.path, stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=_env(hook.env), close_fds=True, cwd="/")
        except OSError as err:
            raise PyociError(f"{where}: {os.strerror(err.errno or 0).lower()}") from None
        try:
            _, stderr = proc.communicate(payload, timeout=hook.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise PyociError(f"{where}: timed out after {hook.timeout}s") from None
        except BrokenPipeError:
            # A hook need not read its stdin.
            stderr = proc.stderr.read() if proc.stderr else b""
            proc.wait()
        if proc.returncode != 0:
            detail = stderr.decode(errors="replace").strip().splitlines()
            reason = (f"exit status {proc.returncode}" if proc.returncode > 0
                      else f"killed by signal {-proc.returncode}")
            suffix = f": {detail[-1]}" if detail else ""
            raise PyociError(f"{where}: {reason}{suffix}")


def _env(entries: list[str] | None) -> dict[str, str]:
    env = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    return env
