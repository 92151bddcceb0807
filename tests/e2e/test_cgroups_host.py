"""The cgroup library on this host's real hierarchies (hybrid: v1 controllers plus the
cgroup2 tree at /sys/fs/cgroup/unified). Everything lives under /pyoci-test-cg/."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from pyoci.cgroups import cgroup_for, cgroup_from_state, devices
from pyoci.cgroups.layout import detect_layout
from pyoci.cgroups.resources import DeviceRule
from pyoci.errors import PyociError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for cgroups")

TEST_ROOT = "/pyoci-test-cg"
UNIFIED_ROOT = "/sys/fs/cgroup/unified"
PY = sys.executable


def _all_test_dirs() -> list[str]:
    """Every directory under /pyoci-test-cg on every hierarchy of the host."""
    layout = detect_layout()
    mounts = {h.mountpoint for h in layout.v1.values()}
    if layout.unified:
        mounts.add(layout.unified.mountpoint)
    found = []
    for m in mounts:
        top = m + TEST_ROOT
        for root, names, _ in os.walk(top):
            found.extend(os.path.join(root, n) for n in names)
        if os.path.isdir(top):
            found.append(top)
    return found


def _kill_and_remove(cg) -> None:
    for d in cg.unique_dirs():
        if os.path.isdir(d):
            for pid in cg.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    if "freezer" in cg.dirs and os.path.isdir(cg.dirs["freezer"]):
        cg.thaw()
    for _ in range(100):
        if not cg.pids():
            break
        time.sleep(0.01)
    cg.destroy()


@pytest.fixture
def unified_root_restored():
    """Tests may enable controllers at the unified root; put it back afterwards."""
    before = set(open(f"{UNIFIED_ROOT}/cgroup.subtree_control").read().split())
    yield
    after = set(open(f"{UNIFIED_ROOT}/cgroup.subtree_control").read().split())
    for c in after - before:
        try:
            with open(f"{UNIFIED_ROOT}/cgroup.subtree_control", "w") as f:
                f.write(f"-{c}")
        except OSError:
            pass


@pytest.fixture
def cgpath(unified_root_restored):
    """A unique cgroup path; whatever is left there is killed and removed afterwards."""
    path = f"{TEST_ROOT}/{uuid.uuid4().hex[:12]}"
    made = []
    yield path, made
    for cg in made:
        _kill_and_remove(cg)
    layout = detect_layout()
    for h in list(layout.v1.values()) + ([layout.unified] if layout.unified else []):
        for d in (h.mountpoint + path, h.mountpoint + TEST_ROOT):
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def _sleeper(procs, *args: str, **kw) -> subprocess.Popen:
    p = subprocess.Popen(list(args) or ["sleep", "100"], **kw)
    procs.append(p)
    return p


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _new(cgpath, resources=None, **kw):
    path, made = cgpath
    cg = cgroup_for("cgtest", path)
    made.append(cg)
    cg.create(resources, **kw)
    return cg


def test_layout_is_hybrid_here():
    layout = detect_layout()
    assert layout.mode == "hybrid"
    assert layout.unified is not None and layout.unified.mountpoint == UNIFIED_ROOT
    assert "name=systemd" in layout.v1 and "memory" in layout.v1


def test_create_join_limits_and_destroy(cgpath, procs):
    cg = _new(cgpath, {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20,
                                  "swappiness": 10},
                       "pids": {"limit": 42},
                       "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0",
                               "burst": 1000}})
    for d in cg.unique_dirs():
        assert os.path.isdir(d), d
    p = _sleeper(procs)
    cg.add_process(p.pid)
    d = cg.dirs
    assert _read(f"{d['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert _read(f"{d['memory']}/memory.memsw.limit_in_bytes") == str(96 << 20)
    assert _read(f"{d['memory']}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert _read(f"{d['memory']}/memory.swappiness") == "10"
    assert _read(f"{d['pids']}/pids.max") == "42"
    assert _read(f"{d['cpu']}/cpu.shares") == "512"
    assert _read(f"{d['cpu']}/cpu.cfs_quota_us") == "20000"
    assert _read(f"{d['cpu']}/cpu.cfs_burst_us") == "1000"
    assert _read(f"{d['cpuset']}/cpuset.cpus") == "0"
    # The process is in every hierarchy, including name=systemd and the unified tree.
    own = _read(f"/proc/{p.pid}/cgroup")
    path = cgpath[0]
    for line in own.splitlines():
        assert line.endswith(":" + path), line
    assert cg.pids() == [p.pid]
    p.kill()
    p.wait()
    cg.destroy()
    assert not [x for x in cg.unique_dirs() if os.path.exists(x)]


def test_update_merges_and_survives_state_round_trip(cgpath, procs):
    cg = _new(cgpath, {"memory": {"limit": 64 << 20}, "pids": {"limit": 10}})
    again = cgroup_from_state(cg.to_state(), "cgtest")
    again.update({"pids": {"limit": 20}, "memory": {"limit": 0}})
    assert _read(f"{cg.dirs['pids']}/pids.max") == "20"
    # 0 means "unchanged", like runc update.
    assert _read(f"{cg.dirs['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert again.to_state()["resources"] == {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}


def test_freeze_stops_a_busy_loop_and_thaw_resumes_it(cgpath, procs, tmp_path):
    cg = _new(cgpath)
    counter = tmp_path / "counter"
    counter.write_text(" " * 20)
    # pwrite of a fixed-width number: a reader never sees a half-written value.
    p = _sleeper(procs, PY, "-c",
                 "import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\ni = 0\n"
                 "while True:\n    i += 1\n    os.pwrite(fd, b'%20d' % i, 0)\n", str(counter))
    cg.add_process(p.pid)
    while not counter.read_text().strip():
        time.sleep(0.01)
    cg.freeze()
    assert cg.is_frozen()
    assert _read(f"{cg.dirs['freezer']}/freezer.state") == "FROZEN"
    before = counter.read_text()
    time.sleep(0.3)
    assert counter.read_text() == before
    cg.thaw()
    assert not cg.is_frozen()
    deadline = time.monotonic() + 10
    while counter.read_text() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.read_text() != before


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_signal_all_reaches_processes_in_other_sessions(cgpath, procs, sig):
    cg = _new(cgpath)
    # The shell forks its setsid child only once it is in the cgroup (after the first line).
    p = _sleeper(procs, "/bin/busybox", "sh", "-c",
                 "read x; /bin/busybox setsid /bin/busybox sleep 1000 & read y",
                 stdin=subprocess.PIPE)
    cg.add_process(p.pid)
    p.stdin.write(b"\n")
    p.stdin.flush()
    deadline = time.monotonic() + 10
    while not any(b"sleep" in _cmdline(pid) for pid in cg.pids()) and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = cg.pids()
    assert len(pids) >= 1 and p.pid in pids
    others = [x for x in pids if x != p.pid]
    cg.signal_all(sig)
    deadline = time.monotonic() + 10
    while cg.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cg.pids() == []
    for pid in others:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in _read(f"/proc/{pid}/stat").split()[2]
    assert not cg.is_frozen()


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_pids_lists_exactly_the_members(cgpath, procs):
    cg = _new(cgpath)
    inside = [_sleeper(procs) for _ in range(3)]
    outside = _sleeper(procs)
    for p in inside:
        cg.add_process(p.pid)
    assert cg.pids() == sorted(p.pid for p in inside)
    assert outside.pid not in cg.pids()


def test_failed_apply_leaves_no_directory(cgpath):
    path, _ = cgpath
    cg = cgroup_for("cgtest", path)
    with pytest.raises(PyociError) as e:
        cg.create({"cpu": {"cpus": "999"}})
    assert "cpuset.cpus" in str(e.value)
    assert not [d for d in cg.unique_dirs() if os.path.exists(d)]
    assert not _all_test_dirs()


def test_200_create_destroy_cycles_leave_nothing(cgpath, procs):
    path, _ = cgpath
    for i in range(200):
        cg = cgroup_for(f"cycle{i}", f"{path}/c{i}")
        cg.create({"memory": {"limit": 32 << 20}, "pids": {"limit": 16}})
        if i % 20 == 0:
            p = _sleeper(procs)
            cg.add_process(p.pid)
            cg.signal_all(signal.SIGKILL)
            p.wait()
        cg.destroy()
    assert not _all_test_dirs()


def test_stats_show_usage_and_throttling(cgpath, procs):
    cg = _new(cgpath, {"cpu": {"quota": 10000, "period": 100000}, "pids": {"limit": 50}})
    p = _sleeper(procs, "/bin/busybox", "sh", "-c", "while :; do :; done")
    cg.add_process(p.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = cg.stats()
        if data["cpu"]["throttling"].get("throttled_periods", 0) > 0:
            break
        time.sleep(0.05)
    assert data["cpu"]["throttling"]["throttled_periods"] > 0
    assert data["cpu"]["usage"]["total"] > 0
    assert data["pids"] == {"current": 1, "limit": 50}
    # Pages the shell touched before joining stay charged to its old cgroup.
    assert data["memory"]["usage"]["limit"] > 0


def test_oom_kill_is_counted(cgpath, procs):
    cg = _new(cgpath, {"memory": {"limit": 24 << 20, "swap": 24 << 20}})
    assert cg.oom_kill_count() == 0
    p = _sleeper(procs, PY, "-c", "import sys; sys.stdin.readline(); b = bytearray(200 << 20)",
                 stdin=subprocess.PIPE)
    cg.add_process(p.pid)
    p.stdin.write(b"go\n")
    p.stdin.flush()
    assert p.wait() == -signal.SIGKILL
    assert cg.oom_kill_count() >= 1


def test_pids_limit_stops_a_fork_loop(cgpath, procs):
    cg = _new(cgpath, {"pids": {"limit": 5}})
    p = _sleeper(procs, "/bin/busybox", "sh", "-c",
                 "read x; for i in 1 2 3 4 5 6 7 8 9 10; do /bin/busybox sleep 100 & done; wait",
                 stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    cg.add_process(p.pid)
    p.stdin.write(b"\n")
    p.stdin.flush()
    deadline = time.monotonic() + 10
    while "max 0" in _read(f"{cg.dirs['pids']}/pids.events") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert int(_read(f"{cg.dirs['pids']}/pids.current")) <= 5
    assert _read(f"{cg.dirs['pids']}/pids.events") != "max 0"


def test_hugetlb_limit_lands_in_the_unified_tree(cgpath):
    cg = _new(cgpath, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    assert _read(f"{cg.unified_dir}/hugetlb.2MB.max") == str(4 << 20)
    assert cg.stats()["hugetlb"]["2MB"]["failcnt"] == 0


def test_unified_keys_are_written_on_hybrid(cgpath):
    cg = _new(cgpath, {"unified": {"cgroup.max.descendants": "7"}})
    assert _read(f"{cg.unified_dir}/cgroup.max.descendants") == "7"


# --- devices ---------------------------------------------------------------------

_OPENER = ("import os, sys\n"
           "sys.stdin.readline()\n"
           "for path in sys.argv[1:]:\n"
           "    try:\n"
           "        os.close(os.open(path, os.O_RDONLY)); print(path, 'ok')\n"
           "    except OSError as e:\n"
           "        print(path, e.errno)\n")


def _open_inside(procs, join, *paths: str) -> dict[str, str]:
    """Start a process, let `join` move it into a cgroup, then have it open `paths`."""
    p = _sleeper(procs, PY, "-c", _OPENER, *paths, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    join(p.pid)
    out, _ = p.communicate("go\n", timeout=30)
    return dict(line.split() for line in out.splitlines())


def test_v1_devices_deny_and_allow(cgpath, procs):
    rules = {"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"}]}
    cg = _new(cgpath, rules, default_devices=False)
    assert _read(f"{cg.dirs['devices']}/devices.list") == "c 1:5 rw"

    def join_devices_only(pid: int) -> None:
        with open(f"{cg.dirs['devices']}/cgroup.procs", "w") as f:
            f.write(str(pid))
    got = _open_inside(procs, join_devices_only, "/dev/null", "/dev/zero")
    assert got == {"/dev/null": str(errno.EPERM), "/dev/zero": "ok"}


def test_v1_devices_defaults_keep_null_usable(cgpath, procs):
    cg = _new(cgpath, {"devices": [{"allow": False, "access": "rwm"}]})

    def join_devices_only(pid: int) -> None:
        with open(f"{cg.dirs['devices']}/cgroup.procs", "w") as f:
            f.write(str(pid))
    got = _open_inside(procs, join_devices_only, "/dev/null", "/dev/kmsg")
    assert got == {"/dev/null": "ok", "/dev/kmsg": str(errno.EPERM)}


@pytest.fixture
def unified_dir():
    d = f"{UNIFIED_ROOT}{TEST_ROOT}/bpf-{uuid.uuid4().hex[:12]}"
    os.makedirs(d)
    try:
        yield d
    finally:
        for pid in open(f"{d}/cgroup.procs").read().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            from pyoci.cgroups import bpf
            bpf.detach_all(d)
        finally:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.01)
            try:
                os.rmdir(f"{UNIFIED_ROOT}{TEST_ROOT}")
            except OSError:
                pass


def _join_unified(d: str):
    def join(pid: int) -> None:
        with open(f"{d}/cgroup.procs", "w") as f:
            f.write(str(pid))
    return join


def test_ebpf_program_denies_on_the_unified_tree(unified_dir, procs):
    state = devices.reduce_rules([DeviceRule(True), DeviceRule(False, "c", 1, 3, "rwm")])
    devices.apply_v2(unified_dir, state)
    got = _open_inside(procs, _join_unified(unified_dir), "/dev/null", "/dev/zero")
    assert got == {"/dev/null": str(errno.EPERM), "/dev/zero": "ok"}


def test_ebpf_program_default_deny_with_exceptions(unified_dir, procs):
    state = devices.reduce_rules([DeviceRule(False),
                                  DeviceRule(True, "c", 1, None, "r"),
                                  DeviceRule(False, "c", 1, 5, "r")])
    devices.apply_v2(unified_dir, state)
    got = _open_inside(procs, _join_unified(unified_dir), "/dev/null", "/dev/zero", "/dev/tty")
    # c 1:* r allows null; the deny of 1:5 only trims an exact match, as on v1.
    assert got == {"/dev/null": "ok", "/dev/zero": "ok", "/dev/tty": str(errno.EPERM)}


def test_ebpf_program_is_replaced_not_stacked(unified_dir, procs):
    from pyoci.cgroups import bpf
    deny_null = devices.reduce_rules([DeviceRule(True), DeviceRule(False, "c", 1, 3)])
    allow_all = devices.reduce_rules([DeviceRule(False), DeviceRule(True, "c", 1, None)])
    devices.apply_v2(unified_dir, deny_null)
    devices.apply_v2(unified_dir, allow_all)
    fd = os.open(unified_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.attached_ids(fd, "query")) == 1
    finally:
        os.close(fd)
    got = _open_inside(procs, _join_unified(unified_dir), "/dev/null")
    assert got == {"/dev/null": "ok"}


def test_container_cgroup_gets_ebpf_program_too(cgpath, procs):
    from pyoci.cgroups import bpf
    cg = _new(cgpath, {"devices": [{"allow": False, "access": "rwm"}]})
    fd = os.open(cg.unified_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.attached_ids(fd, "query")) == 1
    finally:
        os.close(fd)
    got = _open_inside(procs, _join_unified(cg.unified_dir), "/dev/null", "/dev/kmsg")
    assert got == {"/dev/null": "ok", "/dev/kmsg": str(errno.EPERM)}
