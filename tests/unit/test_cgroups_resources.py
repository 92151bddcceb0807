"""linux.resources parsing, refusals naming the field, and runc's update merge."""

from __future__ import annotations

import pytest

from pyoci.cgroups.resources import DeviceRule, from_json, merge_json
from pyoci.errors import ConfigError


def test_full_document():
    r = from_json({
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "wr"}],
        "memory": {"limit": 1 << 20, "reservation": 0, "swap": -1, "swappiness": 0,
                   "kernel": 5, "disableOOMKiller": True},
        "cpu": {"shares": 1024, "quota": 0, "period": 100000, "cpus": "0-1,3", "idle": 1,
                "burst": 0},
        "pids": {"limit": 0},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
        "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 3}]},
        "unified": {"memory.high": "max"},
    })
    assert r.devices == [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw")]
    assert (r.memory.limit, r.memory.reservation, r.memory.swap, r.memory.swappiness) == \
        (1 << 20, None, -1, 0)
    assert r.memory.disable_oom_killer is True
    assert (r.cpu.shares, r.cpu.quota, r.cpu.period, r.cpu.burst, r.cpu.idle) == \
        (1024, None, 100000, 0, 1)
    assert r.pids_limit == 0  # config-linux.md: 0 is a real pids limit
    assert r.block_io.weight_device[0].weight == 100
    assert r.block_io.throttle_read_bps[0].rate == 1000
    assert r.hugepage_limits[0].page_size == "2MB"
    assert r.network.priorities == [("eth0", 3)]
    assert r.unified == {"memory.high": "max"}


@pytest.mark.parametrize("doc,message", [
    ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit: must be an integer"),
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit: must be a positive"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: must be between"),
    ({"cpu": {"cpus": "0-x"}}, "linux.resources.cpu.cpus:"),
    ({"cpu": {"shares": True}}, "linux.resources.cpu.shares: must be an integer"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle: must be 0 or 1"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight: must be between 10 and 1000"),
    ({"blockIO": {"weightDevice": [{"major": 8}]}},
     "linux.resources.blockIO.weightDevice[0].minor: is required"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize:"),
    ({"devices": [{"allow": True, "access": "rx"}]}, "linux.resources.devices[0].access:"),
    ({"devices": [{"access": "r"}]}, "linux.resources.devices[0].allow: is required"),
    ({"unified": {"../etc": "1"}}, "linux.resources.unified.../etc:"),
    ({"pids": []}, "linux.resources.pids: must be an object"),
])
def test_refusals_name_the_field(doc, message):
    with pytest.raises(ConfigError) as e:
        from_json(doc)
    assert str(e.value).startswith(message)


def test_merge_like_runc_update():
    current = {"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 512},
               "devices": [{"allow": False, "access": "rwm"}]}
    merged = merge_json(current, {"memory": {"limit": 0, "reservation": 50},
                                  "cpu": {"quota": 1000, "cpus": ""}, "pids": {"limit": 9}})
    assert merged == {"memory": {"limit": 100, "swap": 200, "reservation": 50},
                      "cpu": {"shares": 512, "quota": 1000}, "pids": {"limit": 9},
                      "devices": [{"allow": False, "access": "rwm"}]}
    assert current["memory"] == {"limit": 100, "swap": 200}  # not mutated
