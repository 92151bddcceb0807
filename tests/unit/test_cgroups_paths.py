"""Layout detection and path resolution, from mountinfo/proc texts (no root needed)."""

from __future__ import annotations

import pytest

from pyoci.cgroups import cgroup_for
from pyoci.cgroups.layout import UNIFIED, parse_mountinfo, parse_proc_cgroup
from pyoci.errors import PyociError

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
PROC_CGROUP = "4:memory:/user/me\n3:cpu,cpuacct:/\n1:name=systemd:/init.scope\n0::/svc/x\n"


def test_modes():
    assert parse_mountinfo(HYBRID).mode == "hybrid"
    assert parse_mountinfo(V2).mode == "v2"
    assert parse_mountinfo(V1).mode == "v1"
    with pytest.raises(PyociError, match="no cgroup"):
        parse_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw\n")


def test_comounted_controllers_share_a_hierarchy():
    layout = parse_mountinfo(HYBRID)
    assert layout.v1["cpu"] is layout.v1["cpuacct"]
    assert layout.v1["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.v1["name=systemd"].mountpoint == "/sys/fs/cgroup/systemd"
    assert "xattr" not in layout.v1
    assert layout.unified.mountpoint == "/sys/fs/cgroup/unified"


def test_proc_cgroup():
    own = parse_proc_cgroup(PROC_CGROUP)
    assert own == {"memory": "/user/me", "cpu": "/", "cpuacct": "/",
                   "name=systemd": "/init.scope", UNIFIED: "/svc/x"}


def test_absolute_path_from_every_hierarchy_root():
    cg = cgroup_for("c1", "/k8s.io/c1", layout=parse_mountinfo(HYBRID), own={})
    assert cg.dirs == {"cpu": "/sys/fs/cgroup/cpu,cpuacct/k8s.io/c1",
                       "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/k8s.io/c1",
                       "memory": "/sys/fs/cgroup/memory/k8s.io/c1",
                       "freezer": "/sys/fs/cgroup/freezer/k8s.io/c1",
                       "name=systemd": "/sys/fs/cgroup/systemd/k8s.io/c1",
                       UNIFIED: "/sys/fs/cgroup/unified/k8s.io/c1"}
    assert cg.unique_dirs().count("/sys/fs/cgroup/cpu,cpuacct/k8s.io/c1") == 1


def test_relative_and_default_paths_sit_under_own_cgroup():
    layout, own = parse_mountinfo(HYBRID), parse_proc_cgroup(PROC_CGROUP)
    cg = cgroup_for("c1", "pods/c1", layout=layout, own=own)
    assert cg.dirs["memory"] == "/sys/fs/cgroup/memory/user/me/pods/c1"
    assert cg.dirs[UNIFIED] == "/sys/fs/cgroup/unified/svc/x/pods/c1"
    default = cgroup_for("c2", None, layout=layout, own=own)
    assert default.dirs["name=systemd"] == "/sys/fs/cgroup/systemd/init.scope/c2"
    assert default.dirs["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/c2"


def test_cgroup_namespace_mount_root_is_stripped():
    text = "41 31 0:38 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    cg = cgroup_for("c", "inner", layout=parse_mountinfo(text), own={UNIFIED: "/outer/me"})
    assert cg.dirs[UNIFIED] == "/sys/fs/cgroup/me/inner"


def test_refusals_explain_themselves():
    layout = parse_mountinfo(V2)
    with pytest.raises(PyociError, match="systemd"):
        cgroup_for("c", "machine.slice:libpod:c", systemd=True, layout=layout, own={})
    with pytest.raises(PyociError, match="--systemd-cgroup"):
        cgroup_for("c", "machine.slice:libpod:c", layout=layout, own={})
    with pytest.raises(PyociError, match=r"\.\."):
        cgroup_for("c", "/a/../b", layout=layout, own={})


def test_state_round_trip():
    from pyoci.cgroups import cgroup_from_state
    cg = cgroup_for("c1", "/x/c1", layout=parse_mountinfo(HYBRID), own={})
    again = cgroup_from_state(cg.to_state(), "c1")
    assert again.to_state() == cg.to_state()
    assert (again.container_id, again.dirs, again.tops) == (cg.container_id, cg.dirs, cg.tops)
    with pytest.raises(PyociError, match="state.json"):
        cgroup_from_state({"mode": "v2"}, "c1")
