"""Capability sets applied in a forked child, checked in /proc/self/status before and after exec."""

from __future__ import annotations

import json
import os

from hardening_helpers import run_in_child
from pyoci.linux import capabilities as caps
from pyoci.spec import Capabilities

GREP = ["/bin/grep", "Cap", "/proc/self/status"]
NOBODY = 65534


def _status_sets(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value.strip(), 16)
    return out


def _apply(config: Capabilities, uid: int | None = None, no_new_privs: bool = False):
    """What the init does, in runc's order: bounding, keepcaps, user, sets."""
    plan = caps.plan_capabilities(config)
    caps.drop_bounding(plan)
    if uid is not None:
        caps.set_keepcaps(True)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        caps.set_keepcaps(False)
    caps.apply_sets(plan)
    if no_new_privs:
        import prctl
        prctl.set_no_new_privs(1)
    return caps.read_sets()


def test_name_table_covers_every_kernel_capability():
    assert len(caps.CAPABILITY_NUMBERS) == 41
    assert sorted(caps.CAPABILITY_NUMBERS.values()) == list(range(41))
    assert caps.last_cap() <= 40


def test_non_root_user_gets_exactly_the_configured_sets_including_ambient():
    config = Capabilities(bounding=["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                          permitted=["CAP_KILL", "CAP_NET_BIND_SERVICE"],
                          effective=["CAP_KILL"],
                          inheritable=["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
                          ambient=["CAP_NET_BIND_SERVICE"])
    before_exec = json.loads(run_in_child(lambda: _apply(config, uid=NOBODY)).stdout)
    assert before_exec == {"CapInh": 0x401, "CapPrm": 0x420, "CapEff": 0x20,
                           "CapBnd": 0x421, "CapAmb": 0x400}
    # After exec of a plain binary the kernel derives permitted and effective from
    # the ambient set (what runc shows for the same config).
    r = run_in_child(lambda: _apply(config, uid=NOBODY), GREP)
    assert _status_sets(r.stdout) == {"CapInh": 0x401, "CapPrm": 0x400, "CapEff": 0x400,
                                      "CapBnd": 0x421, "CapAmb": 0x400}


def test_non_root_without_keepcaps_and_ambient_has_nothing():
    config = Capabilities(bounding=["CAP_KILL"], permitted=["CAP_KILL"], effective=["CAP_KILL"])
    r = run_in_child(lambda: _apply(config, uid=NOBODY), GREP)
    assert _status_sets(r.stdout) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0,
                                      "CapBnd": 0x20, "CapAmb": 0}


def test_root_with_no_new_privs_keeps_only_permitted():
    config = Capabilities(bounding=["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                          permitted=["CAP_KILL"])
    r = run_in_child(lambda: _apply(config, no_new_privs=True), GREP)
    assert _status_sets(r.stdout) == {"CapInh": 0, "CapPrm": 0x20, "CapEff": 0x20,
                                      "CapBnd": 0x421, "CapAmb": 0}


def test_no_capabilities_object_means_every_set_empty():
    r = run_in_child(lambda: _apply(Capabilities(), no_new_privs=True), GREP)
    assert _status_sets(r.stdout) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


def test_all_known_capabilities_kept():
    everything = sorted(caps.CAPABILITY_NUMBERS)
    config = Capabilities(bounding=everything, permitted=everything, effective=everything,
                          inheritable=everything, ambient=everything)
    host_bounding = caps.read_sets()["CapBnd"]
    plan = caps.plan_capabilities(config)
    # A capability outside the host's bounding set cannot be granted to anyone.
    config = Capabilities(**{name: [n for n in everything
                                    if host_bounding & (1 << caps.CAPABILITY_NUMBERS[n])]
                             for name in caps.SET_NAMES})
    r = run_in_child(lambda: _apply(config, uid=NOBODY), GREP)
    got = _status_sets(r.stdout)
    assert got["CapAmb"] == got["CapPrm"] == got["CapEff"] == got["CapBnd"] == host_bounding
    assert plan.warnings == []


def test_capabilities_above_the_kernel_are_skipped_with_a_warning():
    plan = caps.plan_capabilities(Capabilities(bounding=["CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_KILL"],
                                               ambient=["CAP_CHECKPOINT_RESTORE"]),
                                  kernel_last_cap=38)
    assert plan.bounding == {5}
    assert plan.ambient == set()
    assert plan.warnings == [
        "process.capabilities.bounding: CAP_BPF is not supported by the running kernel; skipped",
        "process.capabilities.bounding: CAP_CHECKPOINT_RESTORE is not supported by the running kernel; skipped",
        "process.capabilities.ambient: CAP_CHECKPOINT_RESTORE is not supported by the running kernel; skipped",
    ]


def test_unknown_name_is_skipped_with_a_warning_naming_the_field():
    plan = caps.plan_capabilities(Capabilities(effective=["CAP_KILL", "CAP_FLY"]))
    assert plan.effective == {caps.CAPABILITY_NUMBERS["CAP_KILL"]}
    assert plan.warnings == ["process.capabilities.effective[1]: unknown capability CAP_FLY; skipped"]


def test_ambient_that_is_not_inheritable_is_skipped_like_runc():
    # runc's own default config asks for ambient capabilities without inheritable ones.
    config = Capabilities(bounding=["CAP_KILL", "CAP_CHOWN"], permitted=["CAP_KILL", "CAP_CHOWN"],
                          inheritable=["CAP_CHOWN"], ambient=["CAP_KILL", "CAP_CHOWN"])

    def child():
        plan = caps.plan_capabilities(config)
        caps.drop_bounding(plan)
        caps.set_keepcaps(True)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        skipped = caps.apply_sets(plan)
        return [skipped, caps.read_sets()["CapAmb"]]
    assert json.loads(run_in_child(child).stdout) == [["CAP_KILL"], 0x1]
