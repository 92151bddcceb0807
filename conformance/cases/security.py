"""config-linux.md sysctl, seccomp and personality."""

from __future__ import annotations

import os
import platform

from conformance.context import Context
from conformance.outcome import Skipped, expect, expect_equal
from conformance.registry import case

MKDIR_CALLS = ["mkdir", "mkdirat"]


@case("sysctl", "sysctl values are set in the container",
      "config-linux.md#Sysctl",
      "Each sysctl entry is written for the container's namespaces before the program runs.")
def sysctl(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    expect_equal(ctx.run(bundle).split(), ["1", "1234"], "ip_forward, shmmni inside")


@case("seccomp.errno", "seccomp rule with errnoRet",
      "config-linux.md#Seccomp",
      "A syscall matched by an SCMP_ACT_ERRNO rule fails with the rule's errnoRet.")
def seccomp_errno(ctx: Context) -> None:
    bundle = ctx.bundle("mkdir /tmp/conf-dir 2>&1; echo done")
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": MKDIR_CALLS, "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 38}]}
    output = ctx.run(bundle)
    expect(os.strerror(38) in output, f"mkdir printed {output.strip()!r}, wanted {os.strerror(38)!r}")
    expect(not (bundle.rootfs / "tmp" / "conf-dir").exists(), "the directory was created")


@case("seccomp.errno-default", "seccomp errno defaults to EPERM",
      "config-linux.md#Seccomp",
      "An SCMP_ACT_ERRNO rule without errnoRet makes the syscall fail with EPERM.")
def seccomp_errno_default(ctx: Context) -> None:
    bundle = ctx.bundle("mkdir /tmp/conf-dir 2>&1; echo done")
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": MKDIR_CALLS, "action": "SCMP_ACT_ERRNO"}]}
    output = ctx.run(bundle)
    expect(os.strerror(1) in output, f"mkdir printed {output.strip()!r}, wanted {os.strerror(1)!r}")


@case("seccomp.default-action", "seccomp defaultAction with defaultErrnoRet",
      "config-linux.md#Seccomp",
      "Syscalls no rule matches take defaultAction; SCMP_ACT_ERRNO uses defaultErrnoRet.")
def seccomp_default_action(ctx: Context) -> None:
    bundle = ctx.bundle("mkdir /tmp/conf-dir 2>&1; echo done")
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
                               "syscalls": [{"names": _ALLOWED_FOR_SH, "action": "SCMP_ACT_ALLOW"}]}
    output = ctx.run(bundle)
    expect(os.strerror(13) in output, f"mkdir printed {output.strip()!r}, wanted {os.strerror(13)!r}")
    expect("done" in output, "the shell did not survive the filter")


@case("seccomp.args", "seccomp rule with an argument condition",
      "config-linux.md#Seccomp",
      "A rule with args matches only calls whose arguments satisfy the condition.")
def seccomp_args(ctx: Context) -> None:
    # kill(pid, sig) refused only for signal 0 (argument index 1).
    bundle = ctx.bundle("kill -0 $$ 2>/dev/null && echo zero-allowed || echo zero-refused; "
                        "kill -CONT $$ && echo cont-allowed")
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    expect_equal(ctx.run(bundle).split(), ["zero-refused", "cont-allowed"], "kill with signal 0, then SIGCONT")


@case("seccomp.errno-on-kill-fails", "errnoRet with an action that has no errno is refused",
      "config-linux.md#Seccomp",
      "errnoRet on an action that cannot return an errno (SCMP_ACT_KILL) makes create error.")
def seccomp_errno_on_kill(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": MKDIR_CALLS, "action": "SCMP_ACT_KILL", "errnoRet": 5}]}
    expect(not ctx.try_create(bundle).ok, "create accepted errnoRet on SCMP_ACT_KILL")


@case("personality", "personality LINUX32",
      "config-linux.md#Personality",
      "domain LINUX32 makes uname report a 32-bit machine inside the container.")
def personality(ctx: Context) -> None:
    if platform.machine() not in ("x86_64", "aarch64"):
        raise Skipped(f"no 32-bit personality known for {platform.machine()}")
    bundle = ctx.bundle("uname -m")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    wanted = {"x86_64": "i686", "aarch64": "armv8l"}[platform.machine()]
    expect_equal(ctx.run(bundle).strip(), wanted, "uname -m")


# Enough for busybox sh to run `mkdir ...; echo done` and for the runtime's last steps.
_ALLOWED_FOR_SH = [
    "execve", "execveat", "brk", "mmap", "munmap", "mprotect", "arch_prctl", "set_tid_address",
    "set_robust_list", "rseq", "prlimit64", "getrlimit", "getuid", "geteuid", "getgid", "getegid",
    "getpid", "getppid", "getpgrp", "setpgid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    "sigaltstack", "read", "write", "writev", "readv", "open", "openat", "close", "close_range",
    "stat", "fstat", "lstat", "newfstatat", "statx", "fstatfs", "ioctl", "fcntl", "dup", "dup2",
    "dup3", "getcwd", "chdir", "fchdir", "access", "faccessat", "faccessat2", "wait4", "waitid",
    "clone", "clone3", "fork", "vfork", "exit", "exit_group", "uname", "getdents64", "lseek",
    "pipe", "pipe2", "futex", "capget", "capset", "prctl", "setgroups", "setresuid", "setresgid",
    "setuid", "setgid", "getrandom", "madvise", "nanosleep", "clock_nanosleep", "clock_gettime",
    "gettid", "tgkill", "kill", "poll", "ppoll", "select", "pselect6", "sched_getaffinity",
    "readlink", "readlinkat", "umask", "fchown", "getgroups", "getpgid", "getsid", "setsid",
    "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "sched_yield", "membarrier",
    "seccomp", "personality", "times", "sysinfo", "socket", "connect", "sendto", "recvfrom",
]
