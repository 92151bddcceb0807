"""seccomp filters built from linux.seccomp, loaded in a forked child on the real kernel."""

from __future__ import annotations

import array
import ctypes
import errno
import json
import os
import signal
import socket
import threading

import pytest

from hardening_helpers import (PODMAN_DEFAULT_CAPS, podman_profile_as_oci, run_in_child,
                               seccomp_from_json)
from pyoci.errors import PyociError
from pyoci.linux import seccomp

SH = "/bin/sh"
SYS_PERSONALITY = 135  # x86_64
SYS_MOVE_PAGES = 279   # x86_64
SYS_CACHESTAT = 451    # newer than the podman profile and than libseccomp 2.5


def _raw_syscall(number: int, *args: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(ctypes.c_long(number), *[ctypes.c_ulong(a) for a in args])
    return 0 if rc >= 0 else ctypes.get_errno()


def _allow_all_but(rules: list[dict], **extra) -> object:
    return seccomp_from_json({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules, **extra})


def test_errno_action_returns_configured_errno():
    cfg = _allow_all_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                           "errnoRet": errno.EROFS}])
    r = run_in_child(lambda: seccomp.load(cfg), [SH, "-c", "mkdir /tmp/hard-seccomp-x; echo rc=$?"])
    assert "Read-only file system" in r.stderr
    assert "rc=1" in r.stdout
    assert not os.path.exists("/tmp/hard-seccomp-x")


def test_errno_action_defaults_to_eperm():
    cfg = _allow_all_but([{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}])

    def child():
        seccomp.load(cfg)
        try:
            os.mkdir("/tmp/hard-seccomp-y")
        except OSError as e:
            return e.errno
        os.rmdir("/tmp/hard-seccomp-y")
        return 0
    r = run_in_child(child)
    assert json.loads(r.stdout) == errno.EPERM


def test_argument_condition_denies_only_matching_value():
    cfg = _allow_all_but([{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                           "errnoRet": errno.EACCES,
                           "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]}])

    def child():
        seccomp.load(cfg)
        return [_raw_syscall(SYS_PERSONALITY, 0xFFFFFFFF), _raw_syscall(SYS_PERSONALITY, 0)]
    r = run_in_child(child)
    assert json.loads(r.stdout) == [errno.EACCES, 0], r.stderr


@pytest.mark.parametrize("op,value,value_two,denied,allowed", [
    ("SCMP_CMP_NE", 8, 0, 0, 8),
    ("SCMP_CMP_LT", 8, 0, 0, 8),
    ("SCMP_CMP_LE", 8, 0, 8, 9),
    ("SCMP_CMP_GE", 8, 0, 9, 0),
    ("SCMP_CMP_GT", 8, 0, 9, 8),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x20, 0x25, 0x35),
])
def test_every_operator(op, value, value_two, denied, allowed):
    # personality(0x..) with an unknown persona is harmless and its argument is ours to pick.
    cfg = _allow_all_but([{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                           "errnoRet": errno.EXDEV,
                           "args": [{"index": 0, "value": value, "valueTwo": value_two, "op": op}]}])

    def child():
        seccomp.load(cfg)
        return [_raw_syscall(SYS_PERSONALITY, denied), _raw_syscall(SYS_PERSONALITY, allowed)]
    r = run_in_child(child)
    got = json.loads(r.stdout)
    assert got[0] == errno.EXDEV
    assert got[1] != errno.EXDEV


def test_two_conditions_on_one_argument_become_separate_rules():
    cfg = _allow_all_but([{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                           "errnoRet": errno.EXDEV,
                           "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"},
                                    {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}])

    def child():
        seccomp.load(cfg)
        return [_raw_syscall(SYS_PERSONALITY, v) for v in (5, 7, 6)]
    got = json.loads(run_in_child(child).stdout)
    assert got[:2] == [errno.EXDEV, errno.EXDEV] and got[2] != errno.EXDEV


def test_default_errno_ret_and_allow_list():
    cfg = seccomp_from_json(podman_profile_as_oci(PODMAN_DEFAULT_CAPS))
    assert cfg.default_action == "SCMP_ACT_ERRNO" and cfg.default_errno_ret == errno.ENOSYS

    def child():
        seccomp.load(cfg)
        return [_raw_syscall(SYS_CACHESTAT, 2**32 - 1, 0, 0, 0)]
    got = json.loads(run_in_child(child).stdout)
    assert got == [errno.ENOSYS]
    # Without the filter the kernel knows the syscall: the bad fd is what it reports.
    assert _raw_syscall(SYS_CACHESTAT, 2**32 - 1, 0, 0, 0) in (errno.EBADF, errno.EFAULT)


def test_podman_default_profile_runs_a_shell():
    cfg = seccomp_from_json(podman_profile_as_oci(PODMAN_DEFAULT_CAPS))
    script = ("echo start; for i in 1 2 3; do echo $i; done | sort -r | head -1; "
              "d=$(mktemp -d /tmp/hard-sc.XXXXXX) && echo data > $d/f && cat $d/f && rm -r $d; "
              "ps -o pid= -p $$ >/dev/null && echo ps-ok")
    r = run_in_child(lambda: seccomp.load(cfg), [SH, "-c", script])
    assert r.status == 0, r.stderr
    assert r.stdout.split() == ["start", "3", "data", "ps-ok"]


def test_podman_default_profile_denies_its_errno_list():
    cfg = seccomp_from_json(podman_profile_as_oci(PODMAN_DEFAULT_CAPS))
    # move_pages(0, 0, ...) is a harmless no-op the profile denies with EPERM.
    assert _raw_syscall(SYS_MOVE_PAGES, 0, 0, 0, 0, 0, 0) == 0

    def child():
        seccomp.load(cfg)
        return _raw_syscall(SYS_MOVE_PAGES, 0, 0, 0, 0, 0, 0)
    assert json.loads(run_in_child(child).stdout) == errno.EPERM


def test_kill_process_and_trap_end_with_sigsys():
    for action in ("SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"):
        cfg = _allow_all_but([{"names": ["getcwd"], "action": action}])

        def child():
            seccomp.load(cfg)
            os.getcwd()
            return "survived"
        r = run_in_child(child)
        assert r.status == -signal.SIGSYS, (action, r)


def test_log_and_allow_actions_let_the_call_through():
    cfg = seccomp_from_json({"defaultAction": "SCMP_ACT_LOG",
                             "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}],
                             "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                       "SECCOMP_FILTER_FLAG_TSYNC"]})
    r = run_in_child(lambda: seccomp.load(cfg), [SH, "-c", "echo ok"])
    assert r.stdout == "ok\n"


def test_trace_without_tracer_returns_enosys():
    # With no tracer attached the kernel answers a TRACE rule with ENOSYS.
    cfg = _allow_all_but([{"names": ["personality"], "action": "SCMP_ACT_TRACE", "errnoRet": 3}])

    def child():
        seccomp.load(cfg)
        return _raw_syscall(SYS_PERSONALITY, 0xFFFFFFFF)
    assert json.loads(run_in_child(child).stdout) == errno.ENOSYS


def test_unknown_syscall_names_are_skipped_and_no_new_privs_left_alone():
    cfg = _allow_all_but([{"names": ["no_such_syscall_hard", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
                         architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    built = seccomp.compile_filter(cfg)
    assert built.skipped_syscalls == ["no_such_syscall_hard"]
    built.release()

    def child():
        seccomp.load(cfg)
        with open("/proc/self/status") as f:
            return {k: v.strip() for k, _, v in (line.partition(":") for line in f)
                    if k in ("NoNewPrivs", "Seccomp")}
    got = json.loads(run_in_child(child).stdout)
    assert got == {"NoNewPrivs": "0", "Seccomp": "2"}


@pytest.mark.parametrize("obj,field", [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]},
     "linux.seccomp.architectures[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}, "linux.seccomp.flags[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOPE"}]},
     "linux.seccomp.syscalls[0].action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]},
     "linux.seccomp.syscalls[0].args[0].op"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.syscalls[0].names[0]"),
])
def test_bad_values_name_the_field(obj, field):
    with pytest.raises(PyociError) as e:
        seccomp.compile_filter(seccomp_from_json(obj))
    assert str(e.value).startswith(field + ":")


def test_wait_killable_recv_needs_a_newer_libseccomp():
    cfg = seccomp_from_json({"defaultAction": "SCMP_ACT_ALLOW",
                             "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})
    try:
        seccomp.compile_filter(cfg).release()
    except PyociError as e:
        # libseccomp 2.5 has no attribute for it: a clear refusal naming the flag.
        assert "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported" in str(e)


def _listener(path: str, received: dict) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        with conn:
            fds = array.array("i")
            data = b""
            while True:
                msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                if not msg:
                    break
                data += msg
            received["state"] = json.loads(data)
            received["fds"] = list(fds)
    thread = threading.Thread(target=serve)
    thread.start()
    received["thread"] = thread
    return server


def test_notify_sends_fd_and_state_to_listener(tmp_path):
    path = str(tmp_path / "agent.sock")
    received: dict = {}
    server = _listener(path, received)
    cfg = seccomp_from_json({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                             "listenerMetadata": "hard-meta",
                             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]})
    state = {"ociVersion": "1.0.2", "id": "hard-notify", "status": "creating", "pid": 4242,
             "bundle": "/b", "annotations": {}}

    def child():
        fd = seccomp.load(cfg)
        # The filter is on this process; the runtime's parent would send the fd.
        seccomp.send_to_listener(cfg.listener_path, fd, state, cfg.listener_metadata)
        return fd
    try:
        r = run_in_child(child)
        received["thread"].join(timeout=30)
    finally:
        server.close()
    assert r.status == 0, r.stderr
    msg = received["state"]
    assert msg["fds"] == ["seccompFd"] and msg["pid"] == 4242
    assert msg["metadata"] == "hard-meta" and msg["state"]["id"] == "hard-notify"
    assert len(received["fds"]) == 1
    notify_fd = received["fds"][0]
    try:
        # A seccomp notify fd: its fdinfo/link names the seccomp anon inode.
        assert os.readlink(f"/proc/self/fd/{notify_fd}") == "anon_inode:seccomp notify"
    finally:
        os.close(notify_fd)


def test_listener_refusal_is_a_clear_error(tmp_path):
    with pytest.raises(PyociError) as e:
        seccomp.send_to_listener(str(tmp_path / "nobody.sock"), 0, {"pid": 1})
    assert "send seccomp notify fd to listener" in str(e.value)
    assert "ENOENT" in str(e.value)


# --- the compiled-program cache ------------------------------------------------------------

def _cache_entries(directory) -> list:
    return sorted(p for p in directory.iterdir() if p.suffix == ".json")


def test_cache_stores_the_program_and_a_hit_enforces_it(tmp_path):
    cfg = seccomp_from_json(podman_profile_as_oci(PODMAN_DEFAULT_CAPS))
    fresh = seccomp.compile_filter(cfg)  # no cache: libseccomp's own context
    try:
        expected = fresh.export_bpf()
    finally:
        fresh.release()
    first = seccomp.compile_filter(cfg, cache=str(tmp_path))
    assert first.program == expected and first.ctx == 0
    [entry] = _cache_entries(tmp_path)
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    second = seccomp.compile_filter(cfg, cache=str(tmp_path))
    assert second.program == expected
    # The cached program is the filter: podman's profile allows personality() only for a
    # few arguments, and answers others with its default errno, ENOSYS.
    r = run_in_child(lambda: (second.load(), _raw_syscall(SYS_PERSONALITY, 0xFFFF))[1])
    assert json.loads(r.stdout) == errno.ENOSYS


def test_cache_entry_for_another_profile_is_not_used(tmp_path):
    deny_mkdir = _allow_all_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    deny_rmdir = _allow_all_but([{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}])
    seccomp.compile_filter(deny_mkdir, cache=str(tmp_path))
    [entry] = _cache_entries(tmp_path)
    # An entry under the other profile's name, as a name collision would leave it.
    other = seccomp.compile_filter(deny_rmdir)
    try:
        rmdir_program = other.export_bpf()
    finally:
        other.release()
    stale = json.loads(entry.read_text())
    target = seccomp._cache_path(str(tmp_path), seccomp._cache_key(seccomp._load_library(), deny_rmdir))
    with open(target, "w") as f:
        json.dump(stale, f)
    assert seccomp.compile_filter(deny_rmdir, cache=str(tmp_path)).program == rmdir_program


def test_damaged_cache_entry_is_compiled_again(tmp_path):
    cfg = _allow_all_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    program = seccomp.compile_filter(cfg, cache=str(tmp_path)).program
    [entry] = _cache_entries(tmp_path)
    entry.write_text("{not json")
    assert seccomp.compile_filter(cfg, cache=str(tmp_path)).program == program
    assert json.loads(entry.read_text())["bpf"] == program.hex()


def test_unwritable_cache_still_builds_the_filter(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = _allow_all_but([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    built = seccomp.compile_filter(cfg, cache=str(blocker / "cache"))
    assert built.program
    assert list(tmp_path.iterdir()) == [blocker]


def test_notify_filter_is_not_cached(tmp_path):
    cfg = _allow_all_but([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
                         listenerPath="/run/nowhere.sock")
    built = seccomp.compile_filter(cfg, cache=str(tmp_path))
    try:
        assert built.uses_notify and built.ctx and not built.program
    finally:
        built.release()
    assert _cache_entries(tmp_path) == []


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv(seccomp.CACHE_ENV, raising=False)
    assert seccomp.cache_dir() == "/var/cache/pyoci/seccomp"
    monkeypatch.setenv(seccomp.CACHE_ENV, str(tmp_path))
    assert seccomp.cache_dir() == str(tmp_path)
    monkeypatch.setenv(seccomp.CACHE_ENV, "")
    assert seccomp.cache_dir() is None
