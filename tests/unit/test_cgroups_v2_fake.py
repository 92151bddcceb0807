"""cgroup v2 code paths this hybrid host cannot run with real controllers (cpu, memory,
io, pids on cgroup2), exercised against a fake cgroupfs tree in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyoci.cgroups import cgroup_for
from pyoci.cgroups import v2
from pyoci.cgroups.layout import Hierarchy, Layout, UNIFIED
from pyoci.cgroups.resources import from_json
from pyoci.errors import ConfigError

LEAF_FILES = {
    "cgroup.procs": "", "cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0\n",
    "cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "",
    "cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
    "cpuset.cpus": "", "cpuset.mems": "",
    "memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "4096",
    "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 3\n",
    "memory.stat": "anon 100\nfile 200\n", "memory.swap.current": "10", "memory.peak": "8192",
    "pids.max": "max", "pids.current": "2",
    "io.weight": "default 100", "io.max": "",
    "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 4\n"
                "throttled_usec 9\n",
    "hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0", "hugetlb.2MB.events": "max 0\n",
}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu cpuset io memory pids hugetlb\n")
    (root / "cgroup.subtree_control").write_text("")
    mid = root / "pods"
    mid.mkdir()
    (mid / "cgroup.controllers").write_text("cpu cpuset io memory pids hugetlb\n")
    (mid / "cgroup.subtree_control").write_text("")
    leaf = mid / "c1"
    leaf.mkdir()
    for name, text in LEAF_FILES.items():
        (leaf / name).write_text(text)
    return root


def _cgroup(root: Path):
    layout = Layout("v2", {}, Hierarchy(str(root), "/", ()))
    return cgroup_for("c1", "/pods/c1", layout=layout, own={})


def _read(root: Path, name: str) -> str:
    return (root / "pods" / "c1" / name).read_text()


def test_conversions_match_runc():
    assert v2.shares_to_weight(2) == 1
    assert v2.shares_to_weight(1024) == 39
    assert v2.shares_to_weight(262144) == 10000
    assert v2.blkio_weight_to_io_weight(10) == 1
    assert v2.blkio_weight_to_io_weight(1000) == 10000
    assert v2.blkio_weight_to_io_weight(500) == 4950
    assert v2.swap_to_v2(300, 100) == 200
    assert v2.swap_to_v2(-1, 100) == -1
    assert v2.swap_to_v2(None, 100) is None
    with pytest.raises(ConfigError, match="without a memory limit"):
        v2.swap_to_v2(300, None)
    with pytest.raises(ConfigError, match="below memory.limit"):
        v2.swap_to_v2(50, 100)


def test_apply_writes_v2_files(tree):
    leaf = str(tree / "pods" / "c1")
    v2.apply(leaf, from_json({
        "memory": {"limit": 1000, "swap": 3000, "reservation": 500, "swappiness": 5},
        "cpu": {"shares": 1024, "quota": 20000, "period": 50000, "burst": 10, "idle": 1,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0,
                                                                "rate": 30}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.low": "777"},
    }))
    assert _read(tree, "memory.max") == "1000"
    assert _read(tree, "memory.swap.max") == "2000"
    assert _read(tree, "memory.low") == "777"   # unified keys are written last and win
    assert _read(tree, "cpu.weight") == "39"
    assert _read(tree, "cpu.max") == "20000 50000"
    assert _read(tree, "cpu.max.burst") == "10"
    assert _read(tree, "cpu.idle") == "1"
    assert _read(tree, "cpuset.cpus") == "0"
    assert _read(tree, "pids.max") == "max"
    assert _read(tree, "io.weight") == "default 4950"
    assert _read(tree, "io.max") == "8:0 wiops=30"
    assert _read(tree, "hugetlb.2MB.max") == "4194304"


def test_quota_unlimited_and_period_only(tree):
    leaf = str(tree / "pods" / "c1")
    v2.apply(leaf, from_json({"cpu": {"quota": -1}}))
    assert _read(tree, "cpu.max") == "max"
    (tree / "pods" / "c1" / "cpu.max").write_text("5000 100000")
    v2.apply(leaf, from_json({"cpu": {"period": 20000}}))
    assert _read(tree, "cpu.max") == "5000 20000"


def test_bfq_weight_is_used_when_present(tree):
    leaf = tree / "pods" / "c1"
    (leaf / "io.bfq.weight").write_text("default 100")
    v2.apply(str(leaf), from_json({"blockIO": {"weight": 300,
                                               "weightDevice": [{"major": 8, "minor": 0,
                                                                 "weight": 200}]}}))
    assert (leaf / "io.bfq.weight").read_text() == "8:0 200"  # the last write
    assert (leaf / "io.weight").read_text() == "default 100"


def test_v2_refusals(tree):
    leaf = str(tree / "pods" / "c1")
    with pytest.raises(ConfigError, match="realtime"):
        v2.apply(leaf, from_json({"cpu": {"realtimeRuntime": 5}}))
    with pytest.raises(ConfigError, match="net_cls"):
        v2.apply(leaf, from_json({"network": {"classID": 1}}))
    with pytest.raises(ConfigError, match="hugepageLimits: page size 1GB"):
        v2.apply(leaf, from_json({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}))
    with pytest.raises(ConfigError, match="unified.rdma.max"):
        v2.apply(leaf, from_json({"unified": {"rdma.max": "x"}}))


def test_memory_check_before_update(tree):
    leaf = str(tree / "pods" / "c1")
    with pytest.raises(Exception, match="below the current usage 4096"):
        v2.apply(leaf, from_json({"memory": {"limit": 1024, "checkBeforeUpdate": True}}))
    v2.apply(leaf, from_json({"memory": {"limit": 8192, "checkBeforeUpdate": True}}))
    assert _read(tree, "memory.max") == "8192"


def test_enable_controllers_along_the_path(tree):
    v2.enable_controllers(str(tree), str(tree / "pods" / "c1"), {"memory", "pids"})
    assert (tree / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (tree / "pods" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert _read(tree, "cgroup.subtree_control") == ""  # the leaf itself is left alone
    with pytest.raises(ConfigError, match="rdma not available"):
        v2.enable_controllers(str(tree), str(tree / "pods" / "c1"), {"rdma"})


def test_controllers_needed():
    needed = v2.controllers_needed(from_json({"memory": {"limit": 5}, "cpu": {"cpus": "0"},
                                              "unified": {"io.max": "x", "cgroup.type": "y"}}))
    assert needed == {"memory", "cpuset", "io"}


def test_cgroup_update_stats_freeze_on_fake_v2(tree):
    cg = _cgroup(tree)
    assert cg.mode == "v2" and cg.dirs == {UNIFIED: str(tree / "pods" / "c1")}
    cg.update({"pids": {"limit": 12}, "memory": {"limit": 1 << 20}})
    assert _read(tree, "pids.max") == "12"
    assert _read(tree, "memory.max") == str(1 << 20)
    cg.update({"pids": {"limit": 13}})
    assert cg.resources == {"pids": {"limit": 13}, "memory": {"limit": 1 << 20}}

    stats = cg.stats()
    assert stats["cpu"] == {"usage": {"total": 5000, "kernel": 2000, "user": 3000},
                            "throttling": {"periods": 7, "throttled_periods": 4,
                                           "throttled_time": 9000}}
    assert stats["memory"]["usage"] == {"limit": 1 << 20, "usage": 4096, "max": 8192,
                                        "failcnt": 2}
    assert stats["memory"]["cache"] == 200
    assert stats["memory"]["swap"]["usage"] == 4106
    assert stats["pids"] == {"current": 2, "limit": 13}
    assert {"major": 8, "minor": 0, "op": "Write", "value": 20} in \
        stats["blkio"]["ioServiceBytesRecursive"]
    assert cg.oom_kill_count() == 3

    # The fake kernel "freezes" at once: the events file already says frozen.
    (tree / "pods" / "c1" / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze()
    assert _read(tree, "cgroup.freeze") == "1" and cg.is_frozen()
    cg.thaw()
    assert _read(tree, "cgroup.freeze") == "0" and not cg.is_frozen()


def test_pids_walks_sub_cgroups(tree):
    leaf = tree / "pods" / "c1"
    (leaf / "cgroup.procs").write_text("10\n11\n")
    (leaf / "sub").mkdir()
    (leaf / "sub" / "cgroup.procs").write_text("12\n")
    assert _cgroup(tree).pids() == [10, 11, 12]
