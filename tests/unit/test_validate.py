"""pyoci.validate: message wording of schema errors, each semantic check, and bundle reading."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyoci.validate import (
    KNOWN_CAPABILITIES,
    KNOWN_RLIMITS,
    render_path,
    schema_errors,
    semantic_errors,
    validate_bundle,
)

DEFAULT_NAMESPACES = ("pid", "network", "ipc", "uts", "mount")


def make_config(**top: Any) -> dict[str, Any]:
    """A config that passes every check; tests change one thing in it."""
    config: dict[str, Any] = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": t} for t in DEFAULT_NAMESPACES]},
    }
    config.update(top)
    return config


def with_namespaces(config: dict[str, Any], *entries: dict[str, str]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["linux"]["namespaces"] = list(entries)
    return config


def ns(kind: str, path: str | None = None) -> dict[str, str]:
    return {"type": kind} if path is None else {"type": kind, "path": path}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def test_base_config_is_clean(bundle: Path) -> None:
    config = make_config()
    assert schema_errors(config) == []
    assert semantic_errors(config, bundle) == []


# --------------------------------------------------------------------------- paths

def test_render_path() -> None:
    assert render_path(()) == "(root)"
    assert render_path(("linux", "namespaces", 2, "type")) == "linux.namespaces[2].type"
    assert render_path(("linux", "sysctl", "net.ipv4.ip_forward")) == \
        'linux.sysctl["net.ipv4.ip_forward"]'
    assert render_path(("mounts", 0)) == "mounts[0]"


# --------------------------------------------------------------------------- schema messages

def test_schema_missing_property_names_its_path() -> None:
    assert schema_errors({"root": {"path": "rootfs"}}) == ["ociVersion: is required"]
    assert schema_errors(make_config(root={})) == ["root.path: is required"]


def test_schema_top_level_problem_uses_root_path() -> None:
    assert schema_errors([1, 2]) == ["(root): must be an object"]


def test_schema_type_message() -> None:
    assert schema_errors(make_config(root={"path": 7})) == ["root.path: must be a string"]


def test_schema_min_items_message() -> None:
    config = make_config()
    config["process"]["args"] = []
    assert schema_errors(config) == ["process.args: must contain at least 1 item"]


def test_schema_enum_message_with_index() -> None:
    config = with_namespaces(make_config(), ns("pid"), ns("network"), ns("net"))
    assert schema_errors(config) == [
        "linux.namespaces[2].type: must be one of pid, network, mount, ipc, uts, user, "
        "cgroup, time"]


def test_schema_pattern_message_names_the_value() -> None:
    config = make_config()
    config["process"]["capabilities"] = {"bounding": ["cap_chown"]}
    assert schema_errors(config) == [
        'process.capabilities.bounding[0]: must match the pattern ^CAP_[A-Z_]+$ '
        '(got "cap_chown")']


def test_schema_titled_pattern_message() -> None:
    assert schema_errors(make_config(ociVersion="1.0")) == [
        'ociVersion: must be a SemVer 2.0.0 version such as 1.3.0 (got "1.0")']
    config = make_config()
    config["process"]["env"] = ["PATH=/bin", "NOEQUALS"]
    assert schema_errors(config) == [
        'process.env[1]: must be an environment entry of the form NAME=value (got "NOEQUALS")']


def test_schema_minimum_and_maximum_messages() -> None:
    config = make_config(hooks={"poststop": [{"path": "/bin/true", "timeout": 0}]})
    config["process"]["oomScoreAdj"] = 1001
    assert schema_errors(config) == [
        "hooks.poststop[0].timeout: must be at least 1",
        "process.oomScoreAdj: must be at most 1000",
    ]


def test_schema_additional_property_message() -> None:
    config = make_config()
    config["linux"]["timeOffsets"] = {"realtime": {"secs": 1}}
    assert schema_errors(config) == ["linux.timeOffsets.realtime: is not an allowed property"]


def test_schema_dependent_required_message() -> None:
    config = make_config(mounts=[{"destination": "/m", "uidMappings": [
        {"containerID": 0, "hostID": 1000, "size": 1}]}])
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}
    assert schema_errors(config) == [
        "linux.seccomp.listenerPath: is required when listenerMetadata is set",
        "mounts[0].gidMappings: is required when uidMappings is set",
    ]


def test_schema_at_least_one_of_message() -> None:
    config = make_config()
    config["linux"]["resources"] = {"rdma": {"mlx5_1": {}}}
    assert schema_errors(config) == [
        "linux.resources.rdma.mlx5_1: must set at least one of hcaHandles, hcaObjects"]


def test_schema_conditional_device_numbers() -> None:
    config = make_config()
    config["linux"]["devices"] = [{"type": "c", "path": "/dev/x"}, {"type": "p", "path": "/p"}]
    assert schema_errors(config) == [
        "linux.devices[0].major: is required", "linux.devices[0].minor: is required"]


def test_schema_bad_key_in_string_map() -> None:
    config = make_config(annotations={"": "x", "org.example": 1})
    assert schema_errors(config) == [
        'annotations: property name "" must not be empty',
        'annotations["org.example"]: must be a string',
    ]


def test_schema_seccomp_enums() -> None:
    config = make_config()
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_Z80"],
        "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}],
    }
    errors = schema_errors(config)
    assert errors[0].startswith("linux.seccomp.architectures[0]: must be one of SCMP_ARCH_X86, ")
    assert errors[1:] == [
        "linux.seccomp.syscalls[0].args[0].index: must be at most 5",
        "linux.seccomp.syscalls[0].args[0].op: must be one of SCMP_CMP_NE, SCMP_CMP_LT, "
        "SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ",
        "linux.seccomp.syscalls[0].names: must contain at least 1 item",
    ]


def test_schema_messages_sorted_by_path_with_numeric_indexes() -> None:
    config = make_config(mounts=[{"destination": "/m"}] * 12)
    config["mounts"][2] = {}
    config["mounts"][10] = {}
    assert schema_errors(config) == [
        "mounts[2].destination: is required", "mounts[10].destination: is required"]


def test_schema_treats_null_as_absent_in_config() -> None:
    # Go engines write nil lists as null; runc reads that as "not set".
    config = make_config(mounts=None, hooks={"prestart": None})
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                                                "args": None}]}
    assert schema_errors(config) == []
    assert schema_errors(make_config(root={"path": None})) == ["root.path: is required"]


def test_schema_unknown_properties_are_ignored() -> None:
    # The spec tells runtimes to ignore properties they do not know.
    assert schema_errors(make_config(windows={"layerFolders": []}, extra=1)) == []


def test_unknown_schema_name_is_a_clear_error() -> None:
    from pyoci.validate import SchemaUnavailableError

    with pytest.raises(SchemaUnavailableError, match="no schema named 'nope'"):
        schema_errors({}, "nope")


def test_import_does_not_load_jsonschema() -> None:
    code = "import sys, pyoci.validate; print(sorted(m for m in sys.modules " \
           "if m.split('.')[0] in ('jsonschema', 'referencing')))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=repo).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- semantic checks

def test_root_path_must_exist(tmp_path: Path) -> None:
    assert semantic_errors(make_config(), tmp_path) == [
        f"root.path: {tmp_path}/rootfs does not exist"]


def test_root_path_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "rootfs").write_text("")
    assert semantic_errors(make_config(), tmp_path) == [
        f"root.path: {tmp_path}/rootfs is not a directory"]


def test_root_path_absolute_is_not_joined_to_bundle(bundle: Path, tmp_path: Path) -> None:
    config = make_config(root={"path": str(bundle / "rootfs")})
    assert semantic_errors(config, Path("/nonexistent-bundle")) == []


def test_duplicate_namespace_types(bundle: Path) -> None:
    config = with_namespaces(make_config(), ns("pid"), ns("mount"), ns("pid", "/proc/1/ns/pid"))
    assert semantic_errors(config, bundle) == [
        "linux.namespaces[2].type: duplicate namespace type pid (first at linux.namespaces[0])"]


def test_namespace_path_must_be_absolute(bundle: Path) -> None:
    config = with_namespaces(make_config(), ns("mount"), ns("network", "netns/a"))
    assert semantic_errors(config, bundle) == [
        'linux.namespaces[1].path: must be an absolute path (got "netns/a")']


def test_new_user_namespace_needs_mappings(bundle: Path) -> None:
    config = with_namespaces(make_config(), ns("mount"), ns("user"))
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert semantic_errors(config, bundle) == [
        "linux.gidMappings: is required when a new user namespace is created"]


def test_joined_user_namespace_needs_no_mappings(bundle: Path) -> None:
    config = with_namespaces(make_config(), ns("mount"), ns("user", "/proc/1/ns/user"))
    assert semantic_errors(config, bundle) == []


def test_mappings_without_user_namespace(bundle: Path) -> None:
    config = make_config()
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert semantic_errors(config, bundle) == [
        "linux.gidMappings: is set, but linux.namespaces has no user namespace",
        "linux.uidMappings: is set, but linux.namespaces has no user namespace",
    ]


def test_cwd_must_be_absolute(bundle: Path) -> None:
    config = make_config()
    config["process"]["cwd"] = "home"
    assert semantic_errors(config, bundle) == [
        'process.cwd: must be an absolute path (got "home")']


def test_process_needs_args(bundle: Path) -> None:
    config = make_config()
    del config["process"]["args"]
    assert semantic_errors(config, bundle) == ["process.args: must contain at least 1 item"]


def test_config_without_process_is_fine(bundle: Path) -> None:
    config = make_config()
    del config["process"]
    assert semantic_errors(config, bundle) == []


def test_relative_mount_destination_is_accepted(bundle: Path) -> None:
    # Deprecated, but config.md says to take it from "/".
    config = make_config(mounts=[{"destination": "/proc", "type": "proc"},
                                 {"destination": "tmp", "type": "tmpfs"}])
    assert semantic_errors(config, bundle) == []


def test_idmap_mount_needs_mappings_or_user_namespace(bundle: Path) -> None:
    mount = {"destination": "/data", "source": "/srv", "options": ["rbind", "idmap"]}
    config = make_config(mounts=[mount])
    assert semantic_errors(config, bundle) == [
        "mounts[0].options: idmap needs uidMappings/gidMappings on the mount "
        "or a user namespace"]
    ranges = [{"containerID": 0, "hostID": 1000, "size": 1}]
    config["mounts"][0].update(uidMappings=ranges, gidMappings=ranges)
    assert semantic_errors(config, bundle) == []


def test_hook_path_must_be_absolute(bundle: Path) -> None:
    config = make_config(hooks={"prestart": [{"path": "/bin/true"}],
                                "poststop": [{"path": "/bin/true"}, {"path": "cleanup.sh"}]})
    assert semantic_errors(config, bundle) == [
        'hooks.poststop[1].path: must be an absolute path (got "cleanup.sh")']


def test_capability_table_matches_kernel_numbering() -> None:
    assert len(KNOWN_CAPABILITIES) == 41
    assert KNOWN_CAPABILITIES[0] == "CAP_CHOWN"
    assert KNOWN_CAPABILITIES[21] == "CAP_SYS_ADMIN"
    assert KNOWN_CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    assert len(KNOWN_RLIMITS) == 16 and KNOWN_RLIMITS[7] == "RLIMIT_NOFILE"


def test_unknown_capability_in_any_set(bundle: Path) -> None:
    config = make_config()
    config["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_BPF"], "effective": ["CAP_FLY"],
        "inheritable": [], "permitted": ["CAP_CHECKPOINT_RESTORE"], "ambient": ["CAP_NOPE"]}
    (bundle / "config.json").write_text(json.dumps(config))
    # `pyoci validate` reports them; create only warns (config.md: log, do not fail).
    assert [line for line in validate_bundle(bundle) if "capabilit" in line] == [
        "config.json: process.capabilities.ambient[0]: unknown capability CAP_NOPE",
        "config.json: process.capabilities.effective[0]: unknown capability CAP_FLY",
    ]
    assert semantic_errors(config, bundle) == []


def test_rlimit_unknown_duplicate_and_soft_above_hard(bundle: Path) -> None:
    config = make_config()
    config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_BANANAS", "soft": 1, "hard": 1},
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10},
        {"type": "RLIMIT_CORE", "soft": 2048, "hard": 1024},
    ]
    assert semantic_errors(config, bundle) == [
        "process.rlimits[1].type: unknown resource limit RLIMIT_BANANAS",
        "process.rlimits[2].type: duplicate RLIMIT_NOFILE (first at process.rlimits[0])",
        "process.rlimits[3].soft: 2048 is greater than the hard limit 1024",
    ]


def test_hostname_and_domainname_need_uts_namespace(bundle: Path) -> None:
    config = with_namespaces(make_config(hostname="box", domainname="lan"), ns("mount"))
    assert semantic_errors(config, bundle) == [
        "domainname: cannot be set without a UTS namespace in linux.namespaces",
        "hostname: cannot be set without a UTS namespace in linux.namespaces",
    ]
    joined = with_namespaces(config, ns("mount"), ns("uts", "/proc/1/ns/uts"))
    assert semantic_errors(joined, bundle) == []
    assert semantic_errors(with_namespaces(make_config(hostname=""), ns("mount")), bundle) == []


def test_rootfs_propagation_value(bundle: Path) -> None:
    config = make_config()
    config["linux"]["rootfsPropagation"] = "rshared"
    assert semantic_errors(config, bundle) == [
        "linux.rootfsPropagation: must be one of private, shared, slave, unbindable"]


def test_time_offsets_need_a_new_time_namespace(bundle: Path) -> None:
    config = make_config()
    config["linux"]["timeOffsets"] = {"monotonic": {"secs": 5}}
    assert semantic_errors(config, bundle) == [
        "linux.timeOffsets: is set, but linux.namespaces has no time namespace"]
    joined = with_namespaces(config, ns("mount"), ns("time", "/proc/1/ns/time"))
    assert semantic_errors(joined, bundle) == [
        "linux.timeOffsets: can only be applied to a new time namespace, not one joined by path"]
    assert semantic_errors(with_namespaces(config, ns("mount"), ns("time")), bundle) == []


def test_masked_and_readonly_paths(bundle: Path) -> None:
    config = make_config()
    config["linux"]["maskedPaths"] = ["/proc/kcore", "proc/keys"]
    config["linux"]["readonlyPaths"] = ["sys"]
    assert semantic_errors(config, bundle) == [
        'linux.maskedPaths[1]: must be an absolute path (got "proc/keys")',
        'linux.readonlyPaths[0]: must be an absolute path (got "sys")',
    ]
    no_mount_ns = with_namespaces(config, ns("pid"))
    no_mount_ns["linux"]["readonlyPaths"] = ["/sys"]
    no_mount_ns["linux"]["maskedPaths"] = ["/proc/kcore"]
    assert semantic_errors(no_mount_ns, bundle) == [
        "linux.maskedPaths: needs a mount namespace in linux.namespaces",
        "linux.readonlyPaths: needs a mount namespace in linux.namespaces",
    ]


def test_device_path_must_be_absolute(bundle: Path) -> None:
    config = make_config()
    config["linux"]["devices"] = [{"type": "c", "path": "dev/fuse", "major": 10, "minor": 229}]
    assert semantic_errors(config, bundle) == [
        'linux.devices[0].path: must be an absolute path (got "dev/fuse")']


@pytest.mark.parametrize("key", ["kernel.shmmax", "kernel.msgmnb", "kernel.sem",
                                 "fs.mqueue.msg_max"])
def test_ipc_sysctl_needs_ipc_namespace(bundle: Path, key: str) -> None:
    config = make_config()
    config["linux"]["sysctl"] = {key: "1"}
    assert semantic_errors(config, bundle) == []
    without_ipc = with_namespaces(config, ns("mount"))
    assert semantic_errors(without_ipc, bundle) == [
        f'linux.sysctl["{key}"]: needs an IPC namespace in linux.namespaces '
        "(it would change the host's)"]


def test_net_sysctl_needs_network_namespace(bundle: Path) -> None:
    config = make_config()
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net/core/somaxconn": "64"}
    assert semantic_errors(config, bundle) == []
    assert semantic_errors(with_namespaces(config, ns("mount")), bundle) == [
        'linux.sysctl["net.ipv4.ip_forward"]: needs a network namespace in linux.namespaces '
        "(it would change the host's)",
        'linux.sysctl["net/core/somaxconn"]: needs a network namespace in linux.namespaces '
        "(it would change the host's)",
    ]


def test_net_sysctl_refused_in_host_network_namespace(bundle: Path) -> None:
    config = with_namespaces(make_config(), ns("mount"), ns("network", "/proc/self/ns/net"))
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    assert semantic_errors(config, bundle) == [
        'linux.sysctl["net.ipv4.ip_forward"]: is not allowed in the host\'s network namespace']


def test_uts_and_user_sysctls(bundle: Path) -> None:
    config = make_config()
    config["linux"]["sysctl"] = {"kernel.domainname": "lan", "kernel.hostname": "box",
                                 "user.max_user_namespaces": "0"}
    assert semantic_errors(config, bundle) == [
        'linux.sysctl["kernel.hostname"]: conflicts with the hostname field; '
        "set hostname instead",
        'linux.sysctl["user.max_user_namespaces"]: is not namespaced; '
        "setting it would change the host",
    ]
    userns = with_namespaces(config, *[ns(t) for t in DEFAULT_NAMESPACES], ns("user"))
    ranges = [{"containerID": 0, "hostID": 1000, "size": 1}]
    userns["linux"].update(uidMappings=ranges, gidMappings=ranges)
    del userns["linux"]["sysctl"]["kernel.hostname"]
    assert semantic_errors(userns, bundle) == []


def test_host_wide_sysctl_is_refused(bundle: Path) -> None:
    config = make_config()
    config["linux"]["sysctl"] = {"vm.swappiness": "10"}
    assert semantic_errors(config, bundle) == [
        'linux.sysctl["vm.swappiness"]: is not namespaced; setting it would change the host']


def test_seccomp_errno_only_with_errno_actions(bundle: Path) -> None:
    config = make_config()
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                     {"names": ["rmdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}
    assert semantic_errors(config, bundle) == [
        "linux.seccomp.defaultErrnoRet: is only allowed with SCMP_ACT_ERRNO or "
        "SCMP_ACT_TRACE, not SCMP_ACT_ALLOW",
        "linux.seccomp.syscalls[1].errnoRet: is only allowed with SCMP_ACT_ERRNO or "
        "SCMP_ACT_TRACE, not SCMP_ACT_KILL",
    ]


def test_seccomp_notify_rules(bundle: Path) -> None:
    config = make_config()
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_NOTIFY",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    assert semantic_errors(config, bundle) == [
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        "linux.seccomp.listenerPath: is required when a rule uses SCMP_ACT_NOTIFY",
    ]
    config["linux"]["seccomp"].update(defaultAction="SCMP_ACT_ALLOW",
                                      listenerPath="/run/agent.sock")
    assert semantic_errors(config, bundle) == []


def test_scheduler_fields_must_fit_the_policy(bundle: Path) -> None:
    config = make_config()
    config["process"]["scheduler"] = {"policy": "SCHED_OTHER", "priority": 5, "runtime": 10}
    assert semantic_errors(config, bundle) == [
        "process.scheduler.priority: must be 0 for SCHED_OTHER "
        "(only SCHED_FIFO and SCHED_RR use it)",
        "process.scheduler.runtime: is only used by SCHED_DEADLINE, not SCHED_OTHER",
    ]
    config["process"]["scheduler"] = {"policy": "SCHED_RR", "priority": 0}
    assert semantic_errors(config, bundle) == [
        "process.scheduler.priority: must be between 1 and 99 for SCHED_RR"]
    config["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 1,
                                      "deadline": 2, "period": 3}
    assert semantic_errors(config, bundle) == []


def test_net_devices_need_network_namespace_and_valid_names(bundle: Path) -> None:
    config = make_config()
    config["linux"]["netDevices"] = {"eth1": {"name": "a-very-long-name0"}, "bad/name": {}}
    assert semantic_errors(config, bundle) == [
        'linux.netDevices["bad/name"]: "bad/name" is not a valid interface name',
        'linux.netDevices.eth1.name: "a-very-long-name0" is not a valid interface name '
        "(1 to 15 characters)",
    ]
    no_netns = with_namespaces(config, ns("mount"))
    no_netns["linux"]["netDevices"] = {"eth1": {}}
    assert semantic_errors(no_netns, bundle) == [
        "linux.netDevices: needs a network namespace in linux.namespaces to move devices into"]


def test_memory_swap_below_limit(bundle: Path) -> None:
    config = make_config()
    config["linux"]["resources"] = {"memory": {"limit": 2048, "swap": 1024}}
    assert semantic_errors(config, bundle) == [
        "linux.resources.memory.swap: 1024 is below memory.limit 2048 "
        "(swap counts memory plus swap)"]
    config["linux"]["resources"]["memory"]["swap"] = -1
    assert semantic_errors(config, bundle) == []


def test_semantic_checks_survive_wrong_types(bundle: Path) -> None:
    config = {"ociVersion": 1, "root": "rootfs", "process": {"args": "sh", "cwd": 3,
              "capabilities": {"bounding": "CAP_X"}, "rlimits": [1, {"type": 2}],
              "scheduler": [], "user": None},
              "mounts": {"destination": "x"}, "hooks": {"prestart": [None, "x"]},
              "linux": {"namespaces": [None, 1, {"type": 5}], "sysctl": ["a"],
                        "seccomp": {"syscalls": "x"}, "netDevices": {"eth0": 3},
                        "resources": {"memory": []}, "timeOffsets": 3}}
    assert semantic_errors(config, bundle) == [
        "linux.netDevices: needs a network namespace in linux.namespaces to move devices into",
        "process.args: must contain at least 1 item",
    ]
    assert semantic_errors([], bundle) == []  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bundles

def write_config(bundle: Path, config: object) -> None:
    (bundle / "config.json").write_text(json.dumps(config))


def test_validate_bundle_clean(bundle: Path) -> None:
    write_config(bundle, make_config())
    assert validate_bundle(bundle) == []


def test_validate_bundle_missing_config(tmp_path: Path) -> None:
    assert validate_bundle(tmp_path) == ["config.json: cannot read: No such file or directory"]


def test_validate_bundle_malformed_json(bundle: Path) -> None:
    (bundle / "config.json").write_text('{\n  "ociVersion": "1.3.0",\n  ]\n')
    assert validate_bundle(bundle) == [
        "config.json: invalid JSON: Expecting property name enclosed in double quotes "
        "(line 3 column 3)"]


def test_validate_bundle_not_utf8(bundle: Path) -> None:
    (bundle / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    assert validate_bundle(bundle) == ["config.json: invalid JSON: not UTF-8 at byte 16"]


def test_validate_bundle_combines_schema_and_semantic_errors(bundle: Path) -> None:
    config = make_config(hostname="box")
    config["process"]["args"] = []
    config["process"]["cwd"] = "relative"
    config["linux"]["namespaces"] = [{"type": "mount"}]
    write_config(bundle, config)
    assert validate_bundle(bundle) == [
        "config.json: hostname: cannot be set without a UTS namespace in linux.namespaces",
        "config.json: process.args: must contain at least 1 item",
        'config.json: process.cwd: must be an absolute path (got "relative")',
    ]


def test_validate_bundle_does_not_repeat_a_field_in_other_words(bundle: Path) -> None:
    config = make_config()
    config["linux"]["rootfsPropagation"] = "sideways"
    write_config(bundle, config)
    assert validate_bundle(bundle) == [
        "config.json: linux.rootfsPropagation: must be one of private, shared, slave, unbindable"]


def test_validate_bundle_with_non_object_document(bundle: Path) -> None:
    write_config(bundle, ["not", "an", "object"])
    assert validate_bundle(bundle) == ["config.json: (root): must be an object"]


def test_oci_version_must_be_semver(bundle: Path) -> None:
    config = make_config()
    for good in ("1.3.0", "1.0.2-dev", "1.1.0+build.7"):
        config["ociVersion"] = good
        assert semantic_errors(config, bundle) == []
    config["ociVersion"] = "not-a-version"
    assert semantic_errors(config, bundle) == [
        'ociVersion: must be a SemVer 2.0.0 version such as 1.3.0 (got "not-a-version")']
