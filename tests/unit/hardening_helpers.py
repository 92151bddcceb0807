"""Helpers for the hardening unit tests: run code in a forked child on the real kernel.

The child is where capabilities are dropped, filters loaded and limits set, so the
pytest process itself is never changed.
"""

from __future__ import annotations

import json
import os
import platform
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from pyoci.spec import load_spec

PODMAN_PROFILE = "/usr/share/containers/seccomp.json"


@dataclass
class ChildResult:
    status: int          # exit code, or -signal when killed
    stdout: str
    stderr: str


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def run_in_child(setup: Callable[[], Any], argv: list[str] | None = None,
                 stdin: bytes | None = None) -> ChildResult:
    """Fork; in the child call setup(), then execv argv (or exit 0 after printing
    setup's return value as JSON on stdout). A Python error in the child is exit 120
    with its traceback on stderr."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r); os.close(err_r); os.close(in_w)
            os.dup2(in_r, 0); os.dup2(out_w, 1); os.dup2(err_w, 2)
            result = setup()
            if argv is None:
                os.write(1, json.dumps(result).encode())
                os._exit(0)
            os.execv(argv[0], argv)
        except BaseException:
            os.write(2, traceback.format_exc().encode())
        os._exit(120)
    os.close(out_w); os.close(err_w); os.close(in_r)
    if stdin:
        os.write(in_w, stdin)
    os.close(in_w)
    stdout = _read_all(out_r)
    stderr = _read_all(err_r)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return ChildResult(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


def podman_profile_as_oci(caps: set[str]) -> dict:
    """Turn containers-common's seccomp.json into the `linux.seccomp` object podman
    writes into a bundle: native architecture plus its sub-architectures, and only the
    rules whose includes/excludes match this arch and the given capabilities."""
    with open(PODMAN_PROFILE) as f:
        profile = json.load(f)
    go_arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    scmp_native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[go_arch]
    arches = []
    for entry in profile.get("archMap", []):
        if entry["architecture"] == scmp_native:
            arches = [entry["architecture"], *entry.get("subArchitectures", [])]

    def matches(rule: dict) -> bool:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and go_arch not in inc["arches"]:
            return False
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            return False
        if exc.get("arches") and go_arch in exc["arches"]:
            return False
        if exc.get("caps") and set(exc["caps"]) & caps:
            return False
        return True

    syscalls = []
    for rule in profile["syscalls"]:
        if not matches(rule):
            continue
        out = {"names": rule["names"], "action": rule["action"]}
        if rule.get("args"):
            out["args"] = rule["args"]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    return {"defaultAction": profile["defaultAction"],
            "defaultErrnoRet": profile.get("defaultErrnoRet"),
            "architectures": arches, "syscalls": syscalls}


def seccomp_from_json(obj: dict):
    """A spec.Seccomp from a `linux.seccomp` JSON object, through the real loader."""
    doc = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {"seccomp": obj}}
    return load_spec(doc).linux.seccomp


# The capabilities podman gives a container by default.
PODMAN_DEFAULT_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                       "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                       "CAP_SETUID", "CAP_SYS_CHROOT"}
