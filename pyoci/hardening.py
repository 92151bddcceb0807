"""The container process's security settings, applied by the init in runc's order.

  prepare()            before pivot_root (every import must happen there): refuse what cannot be applied (SELinux label
                       without SELinux), plan capabilities, build the seccomp filter,
                       connect to the seccomp listener while the host's paths are visible
  apply_sysctl()       after pivot_root, before the read-only paths (/proc/sys is one)
  finalize()           the last steps as root, then the user switch:
                         AppArmor exec profile, rlimits, oomScoreAdj, personality,
                         ioPriority, scheduler,
                         seccomp here if noNewPrivileges is false (needs CAP_SYS_ADMIN),
                         bounding set, keepcaps, user switch, capability sets,
                         no_new_privs, seccomp here if noNewPrivileges is true,
                         the notify fd to the listener
Signal and descriptor hygiene (pyoci.linux.exec_hygiene) is the step just before execve.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only

from .errors import PyociError
from .linux import capabilities, process_attrs, security_labels
from .spec import Spec

if TYPE_CHECKING:  # the seccomp binding is imported only when a profile is present
    import socket

    from .linux.seccomp import SeccompFilter


@dataclass
class Hardening:
    """The security settings of the container's process, checked and prepared."""

    spec: Spec
    caps: capabilities.CapabilityPlan
    seccomp: "SeccompFilter | None" = None
    listener: socket.socket | None = None
    host_pid: int = 0
    container_id: str = ""
    bundle: str = ""
    warnings: list[str] = field(default_factory=list)


def plan(spec: Spec, container_id: str, bundle: str) -> Hardening:
    """The checks and the work that need neither the container's namespaces nor its
    cgroup: label and capability checks, the libraries, the seccomp program. The
    create path does this in the bootstrap child while the parent makes the cgroup."""
    assert spec.process is not None
    security_labels.check_selinux_label(spec.process.selinux_label)
    caps = capabilities.plan_capabilities(spec.process.capabilities)
    capabilities.preload()
    hardening = Hardening(spec=spec, caps=caps, container_id=container_id, bundle=bundle,
                          warnings=list(caps.warnings))
    if spec.linux.seccomp is not None:
        from .linux import seccomp
        hardening.seccomp = seccomp.compile_filter(spec.linux.seccomp, cache=seccomp.cache_dir())
    return hardening


def prepare(spec: Spec, container_id: str, bundle: str, planned: Hardening | None = None
            ) -> Hardening:
    """Everything that can fail cleanly, done while the init still reports to the parent
    and still sees the host's file system; `planned`: what `plan` made earlier."""
    hardening = planned or plan(spec, container_id, bundle)
    config = spec.linux.seccomp
    if config is not None and hardening.seccomp is not None:
        from .linux import seccomp
        if hardening.seccomp.uses_notify:
            if not config.listener_path:
                hardening.seccomp.release()
                raise PyociError("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used")
            # The host's /proc is still mounted here: /proc/self is the pid the runtime sees.
            hardening.host_pid = int(os.readlink("/proc/self"))
            hardening.listener = seccomp.connect_listener(config.listener_path)
    return hardening


def apply_sysctl(spec: Spec) -> None:
    process_attrs.apply_sysctl(spec.linux.sysctl)


def finalize(h: Hardening, switch_user: Callable[[], None]) -> None:
    """The last steps before the exec fifo wait; `switch_user` sets groups, gid and uid."""
    spec, process = h.spec, h.spec.process
    assert process is not None
    security_labels.apply_apparmor_profile(process.apparmor_profile)
    process_attrs.apply_rlimits(process.rlimits)
    if process.oom_score_adj is not None:
        process_attrs.set_oom_score_adj(process.oom_score_adj)
    if spec.linux.personality is not None:
        process_attrs.set_personality(spec.linux.personality)
    if process.io_priority is not None:
        process_attrs.set_io_priority(process.io_priority)
    if process.scheduler is not None:
        process_attrs.set_scheduler(process.scheduler)
    security_labels.apply_selinux_label(process.selinux_label)

    notify_fd = None
    if h.seccomp is not None and not process.no_new_privileges:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the drop.
        notify_fd = h.seccomp.load()
    capabilities.drop_bounding(h.caps)
    capabilities.set_keepcaps(True)
    switch_user()
    capabilities.set_keepcaps(False)
    capabilities.apply_sets(h.caps)
    if process.no_new_privileges:
        process_attrs.set_no_new_privs()
        if h.seccomp is not None:
            notify_fd = h.seccomp.load()
    if h.seccomp is not None:
        h.seccomp.release()
    if notify_fd is not None:
        _send_notify_fd(h, notify_fd)


def _send_notify_fd(h: Hardening, notify_fd: int) -> None:
    from .linux import seccomp  # already imported by prepare()
    assert h.listener is not None and h.spec.linux.seccomp is not None
    state = {"ociVersion": h.spec.oci_version, "id": h.container_id, "status": "creating",
             "pid": h.host_pid, "bundle": h.bundle, "annotations": h.spec.annotations}
    sock, h.listener = h.listener, None
    try:
        seccomp.send_state(sock, notify_fd, state, h.spec.linux.seccomp.listener_metadata,
                           h.spec.linux.seccomp.listener_path or "")
    finally:
        os.close(notify_fd)
