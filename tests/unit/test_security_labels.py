"""AppArmor and SELinux handling on a host that has neither, matching runc 1.1."""

from __future__ import annotations

import json

import pytest

from hardening_helpers import run_in_child
from pyoci.errors import PyociError
from pyoci.linux import security_labels as labels


def test_host_has_neither_module():
    assert not labels.apparmor_enabled()
    assert not labels.selinux_enabled()


def test_apparmor_profile_fails_like_runc():
    def child():
        try:
            labels.apply_apparmor_profile("hard-profile")
        except PyociError as e:
            return str(e)
        return None
    msg = json.loads(run_in_child(child).stdout)
    assert msg == ("apply apparmor profile 'hard-profile': write /proc/self/attr/exec "
                   "(AppArmor is not enabled on this host): invalid argument (EINVAL)")


def test_no_profile_is_nothing_to_do():
    labels.apply_apparmor_profile(None)
    labels.apply_apparmor_profile("")
    labels.apply_selinux_label(None)
    labels.check_selinux_label(None)


def test_selinux_label_is_refused_before_anything_is_made():
    with pytest.raises(PyociError) as e:
        labels.check_selinux_label("system_u:system_r:container_t:s0")
    assert str(e.value) == ("process.selinuxLabel: selinux label is specified in config, "
                            "but selinux is disabled or not supported")


def test_mount_label_data():
    label = "system_u:object_r:container_file_t:s0"
    assert labels.mount_label_data("tmpfs", "mode=755", label) == f'mode=755,context="{label}"'
    assert labels.mount_label_data("devpts", "", label) == f'context="{label}"'
    assert labels.mount_label_data("proc", "", label) == ""
    assert labels.mount_label_data("bind", "", label) == ""
    assert labels.mount_label_data("tmpfs", "mode=755", None) == "mode=755"
