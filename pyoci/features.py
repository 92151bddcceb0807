"""`pyoci features`: the runtime-spec features document, true for this build and host.

Every list is taken from the table the code itself uses (mount options from
mountopts, seccomp names from the seccomp binding, capability names from the
capability table), so the document cannot promise what the parser refuses. Host facts
(kernel namespaces, LSMs, libseccomp) are probed, cheaply, when the command runs.
"""

from __future__ import annotations

import json
import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION, __version__
from .context import Context
from .spec import NAMESPACE_TYPES

OCI_VERSION_MIN = "1.0.0"
HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"]
# The architectures of the spec's SeccompArch list, as libseccomp names them.
_SECCOMP_ARCHS = ("x86", "x86_64", "x32", "arm", "aarch64", "loongarch64", "m68k", "mips",
                  "mips64", "mips64n32", "mipsel", "mipsel64", "mipsel64n32", "ppc", "ppc64",
                  "ppc64le", "riscv64", "s390", "s390x", "parisc", "parisc64", "sh", "sheb")


def _mount_options() -> list[str]:
    from .linux import mountopts
    # "idmap"/"ridmap" are steered by pyoci (bootstrap.py, linux/idmapped.py);
    # the other ignored words never reach the kernel and change nothing.
    options = [*mountopts._FLAGS, *mountopts.PROPAGATION, *mountopts.RECURSIVE, "idmap", "ridmap"]
    return sorted(set(options))


def _namespaces() -> list[str]:
    from .linux.namespaces import PROC_NAME
    return [ns for ns in NAMESPACE_TYPES if os.path.exists(f"/proc/self/ns/{PROC_NAME[ns]}")]


def _capabilities() -> list[str]:
    from .linux.capabilities import CAPABILITY_NUMBERS, last_cap
    top = last_cap()
    return [name for name, number in sorted(CAPABILITY_NUMBERS.items(), key=lambda i: i[1])
            if number <= top]


def _seccomp() -> dict[str, Any]:
    from .errors import PyociError
    from .linux import seccomp

    try:
        lib = seccomp._load_library()
    except PyociError:
        return {"enabled": False}
    actions = sorted({*seccomp._FIXED_ACTIONS, *seccomp._ERRNO_ACTIONS})
    archs = [f"SCMP_ARCH_{name.upper()}" for name in _SECCOMP_ARCHS
             if lib.seccomp_arch_resolve_name(name.encode()) != 0]
    known = sorted(seccomp.FLAG_ATTRIBUTES)
    supported = [flag for flag in known if _flag_supported(lib, seccomp.FLAG_ATTRIBUTES[flag])]
    return {"enabled": True, "actions": actions, "operators": sorted(seccomp.OPERATORS),
            "archs": archs, "knownFlags": known, "supportedFlags": supported}


def _flag_supported(lib: Any, attribute: int) -> bool:
    ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW
    if not ctx:
        return False
    try:
        return lib.seccomp_attr_set(ctx, attribute, 1) == 0
    finally:
        lib.seccomp_release(ctx)


def _cgroup() -> dict[str, bool]:
    return {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False}


def features() -> dict[str, Any]:
    from .linux import security_labels

    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": HOOK_KINDS,
        "mountOptions": _mount_options(),
        "linux": {
            "namespaces": _namespaces(),
            "capabilities": _capabilities(),
            "cgroup": _cgroup(),
            "seccomp": _seccomp(),
            "apparmor": {"enabled": security_labels.apparmor_enabled()},
            "selinux": {"enabled": security_labels.selinux_enabled()},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": _idmap_supported()}},
        },
        "annotations": {"io.github.pyoci.version": __version__},
    }


def _idmap_supported() -> bool:
    """Idmapped bind mounts need mount_setattr (Linux 5.12); pyoci implements them."""
    release = os.uname().release.split(".")
    try:
        if (int(release[0]), int(release[1].split("-")[0])) < (5, 12):
            return False
    except (IndexError, ValueError):
        return False
    # Tried, not guessed: needs root on the host and a file system that allows it.
    from .linux import idmapped
    return idmapped.supported()


def cmd_features(ctx: Context, argv: list[str]) -> int:
    from .cli import command_parser
    command_parser("features", "print what this runtime supports, as JSON").parse_args(argv)
    print(json.dumps(features(), indent=2))
    return 0
