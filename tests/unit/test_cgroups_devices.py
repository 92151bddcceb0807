"""Device rule reduction (the v1 kernel's semantics) and the eBPF program the kernel
verifier must accept."""

from __future__ import annotations

import os

import pytest

from pyoci.cgroups import devices
from pyoci.cgroups.resources import DeviceRule as R


def test_reduce_starts_from_deny_all():
    assert devices.reduce_rules([]) == devices.DeviceState(False, {})


def test_all_rule_resets_and_later_rules_refine():
    state = devices.reduce_rules([R(True, "c", 1, 3, "r"), R(False),
                                  R(True, "c", 1, 3, "r"), R(True, "c", 1, 3, "w"),
                                  R(True, "b", 8, None, "rwm"), R(False, "b", 8, None, "m")])
    assert state == devices.DeviceState(False, {("c", 1, 3): "rw", ("b", 8, None): "rw"})


def test_default_allow_collects_denials():
    state = devices.reduce_rules([R(True), R(False, "c", 1, 3, "rw"), R(True, "c", 1, 3, "w")])
    assert state == devices.DeviceState(True, {("c", 1, 3): "r"})


def test_typed_all_rule_expands():
    state = devices.reduce_rules([R(False), R(True, "a", 7, None, "r")])
    assert state.exceptions == {("c", 7, None): "r", ("b", 7, None): "r"}


def test_container_rules_append_defaults_and_nodes():
    rules = devices.container_rules([R(False)], [("c", 10, 229), ("p", 0, 0)])
    assert rules[0] == R(False)
    assert rules[1:-1] == list(devices.DEFAULT_ALLOWED)
    assert rules[-1] == R(True, "c", 10, 229, "rwm")
    state = devices.reduce_rules(rules)
    assert state.exceptions[("c", 1, 3)] == "rwm"
    assert state.exceptions[("c", 136, None)] == "rwm"


def test_v1_list_round_trip():
    state = devices.DeviceState(False, {("c", 1, 3): "rwm", ("b", None, None): "m"})
    text = "\n".join(devices.v1_line(k, a) for k, a in state.exceptions.items())
    assert text == "c 1:3 rwm\nb *:* m"
    assert devices.parse_v1_list(text) == state
    assert devices.parse_v1_list("a *:* rwm\n") == devices.DeviceState(True, {})


def test_write_v1_skips_when_already_there(tmp_path):
    (tmp_path / "devices.list").write_text("a *:* rwm\n")
    (tmp_path / "devices.allow").write_text("")
    (tmp_path / "devices.deny").write_text("")
    devices.write_v1(str(tmp_path), devices.DeviceState(True, {}))
    assert (tmp_path / "devices.allow").read_text() == ""
    devices.write_v1(str(tmp_path), devices.DeviceState(False, {("c", 1, 3): "rw"}))
    assert (tmp_path / "devices.deny").read_text() == "a"
    assert (tmp_path / "devices.allow").read_text() == "c 1:3 rw"


def test_program_shape():
    code = devices.compile_program(devices.DeviceState(False, {("c", 1, 3): "rwm"}))
    assert len(code) % 8 == 0
    # prologue 6, block: 3 compares + 5 tail, epilogue 2
    assert len(code) // 8 == 6 + 8 + 2
    assert code[-8] == 0x95  # ends in exit


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_PROG_LOAD needs CAP_BPF")
@pytest.mark.parametrize("state", [
    devices.DeviceState(False, {}),
    devices.DeviceState(True, {("c", 1, 3): "rw", ("b", None, None): "m"}),
    devices.reduce_rules(devices.container_rules([R(False)])),
])
def test_kernel_verifier_accepts_program(state):
    from pyoci.cgroups import bpf
    fd = bpf.load_device_program(devices.compile_program(state), "load test program")
    os.close(fd)
