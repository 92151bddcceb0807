"""The schemas in schema/ accept what the spec, runc and podman write, and refuse the spec's bad examples."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pyoci.validate import schema_directory, schema_errors

SCHEMA_DIR = schema_directory()

# The runtime spec's own example documents, in shared/ beside the checkout.
_SPEC = Path("reference/runtime-spec/schema/test")
SPEC_TESTS = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / _SPEC,
                               Path("/work/shared") / _SPEC) if p.is_dir()),
                  Path(__file__).resolve().parents[3] / "shared" / _SPEC)
# Examples for other platforms carry objects (freebsd, zos) this Linux-only schema ignores.
OTHER_PLATFORM_PREFIXES = ("freebsd-", "zos-", "windows-", "solaris-", "vm-")

PYOCI_STATE = {
    "ociVersion": "1.3.0",
    "id": "c1",
    "pid": 42,
    "status": "running",
    "bundle": "/b",
    "rootfs": "/b/rootfs",
    "created": "2026-08-22T10:00:00.123456789Z",
    "owner": "",
    "annotations": {},
}

# Where a podman/containers-common seccomp profile may live on a Debian host.
PODMAN_SECCOMP_PROFILES = (
    Path("/usr/share/containers/seccomp.json"),
    Path("/usr/share/gocode/src/github.com/containers/common/pkg/seccomp/seccomp.json"),
)


def _examples(kind: str, verdict: str, linux_only: bool = False) -> list[Path]:
    files = sorted((SPEC_TESTS / kind / verdict).glob("*.json"))
    if linux_only:
        files = [f for f in files if not f.name.startswith(OTHER_PLATFORM_PREFIXES)]
    # No examples found is a broken setup, not a pass.
    assert files, f"no {kind}/{verdict} examples under {SPEC_TESTS}"
    return files


def _load(path: Path) -> object:
    return json.loads(path.read_text())


def test_schema_files_are_draft_2020_12_and_valid() -> None:
    from jsonschema import Draft202012Validator

    names = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert names == ["config.schema.json", "features.schema.json", "state.schema.json"]
    for name in names:
        document = json.loads((SCHEMA_DIR / name).read_text())
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(document)


def test_spec_examples_exist() -> None:
    # Guards the parametrised tests below against silently collecting nothing.
    assert len(_examples("config", "good", linux_only=True)) >= 5
    assert len(_examples("config", "bad", linux_only=True)) >= 3


@pytest.mark.parametrize("path", _examples("config", "good", linux_only=True), ids=lambda p: p.name)
def test_spec_good_config_is_accepted(path: Path) -> None:
    assert schema_errors(_load(path), "config") == []


@pytest.mark.parametrize(
    "path",
    [p for p in _examples("config", "bad", linux_only=True) if p.name.startswith("linux-")],
    ids=lambda p: p.name,
)
def test_spec_bad_linux_config_is_refused(path: Path) -> None:
    assert schema_errors(_load(path), "config") != []


def test_spec_bad_examples_name_the_field() -> None:
    assert schema_errors(_load(SPEC_TESTS / "config/bad/linux-rdma.json")) == [
        "linux.resources.rdma.mlx5_1.hcaHandles: must be an integer"]
    assert schema_errors(_load(SPEC_TESTS / "config/bad/linux-netdevice.json")) == [
        "linux.netDevices.eth0.name: must be a string"]
    assert schema_errors(_load(SPEC_TESTS / "config/bad/linux-hugepage.json")) == [
        'linux.resources.hugepageLimits[0].pageSize: '
        'must be a page size such as 2MB or 1GB (got "64kB")']


@pytest.mark.parametrize("path", _examples("features", "good"), ids=lambda p: p.name)
def test_spec_good_features_are_accepted(path: Path) -> None:
    assert schema_errors(_load(path), "features") == []


def test_spec_bad_features_are_refused() -> None:
    bad = _examples("features", "bad")
    assert bad
    for path in bad:
        assert schema_errors(_load(path), "features") != []
    assert schema_errors(_load(SPEC_TESTS / "features/bad/missing-ociVersionMax.json"),
                         "features") == ["ociVersionMax: is required"]


def test_features_refuse_unknown_namespace_and_seccomp_action() -> None:
    doc = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
           "linux": {"namespaces": ["pid", "bogus"],
                     "seccomp": {"actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_MAYBE"]},
                     "mountExtensions": {"idmap": {"enabled": "yes"}}}}
    assert schema_errors(doc, "features") == [
        "linux.mountExtensions.idmap.enabled: must be a boolean",
        "linux.namespaces[1]: must be one of pid, network, mount, ipc, uts, user, cgroup, time",
        "linux.seccomp.actions[1]: must be one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
        "SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, "
        "SCMP_ACT_LOG, SCMP_ACT_NOTIFY",
    ]


@pytest.mark.parametrize("path", _examples("state", "good"), ids=lambda p: p.name)
def test_spec_good_state_is_accepted(path: Path) -> None:
    assert schema_errors(_load(path), "state") == []


@pytest.mark.parametrize("status", ["creating", "created", "running", "paused", "stopped"])
def test_pyoci_state_output_is_accepted(status: str) -> None:
    assert schema_errors(dict(PYOCI_STATE, status=status), "state") == []


def test_state_refuses_unknown_status_and_missing_pid() -> None:
    assert schema_errors(dict(PYOCI_STATE, status="zombie"), "state") == [
        "status: must be one of creating, created, running, stopped, paused"]
    no_pid = {k: v for k, v in PYOCI_STATE.items() if k != "pid"}
    assert schema_errors(no_pid, "state") == ["pid: is required"]
    assert schema_errors(dict(no_pid, status="stopped"), "state") == []


def test_state_refuses_non_rfc3339_created() -> None:
    assert schema_errors(dict(PYOCI_STATE, created="22 Aug 2026"), "state") == [
        'created: must be an RFC 3339 date-time (got "22 Aug 2026")']


def test_state_output_must_not_use_null() -> None:
    # Unlike config.json, pyoci's own output is checked exactly as written.
    assert schema_errors(dict(PYOCI_STATE, annotations=None), "state") == [
        "annotations: must be an object"]


def test_runc_spec_default_config_is_accepted(tmp_path: Path) -> None:
    runc = shutil.which("runc")
    assert runc, "runc is part of the development environment (tools/setup.sh)"
    subprocess.run([runc, "spec"], cwd=tmp_path, check=True)
    config = _load(tmp_path / "config.json")
    assert schema_errors(config, "config") == []


def test_runc_spec_rootless_config_is_accepted(tmp_path: Path) -> None:
    runc = shutil.which("runc")
    assert runc
    subprocess.run([runc, "spec", "--rootless"], cwd=tmp_path, check=True)
    config = _load(tmp_path / "config.json")
    assert schema_errors(config, "config") == []


def _podman_seccomp_profile() -> Path | None:
    return next((p for p in PODMAN_SECCOMP_PROFILES if p.is_file()), None)


@pytest.mark.skipif(_podman_seccomp_profile() is None,
                    reason="no containers-common seccomp.json on this host")
def test_podman_seccomp_profile_is_accepted_as_linux_seccomp() -> None:
    profile = _load(_podman_seccomp_profile())  # type: ignore[arg-type]
    config = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "linux": {"seccomp": profile}}
    assert schema_errors(config, "config") == []


def test_full_linux_config_is_accepted() -> None:
    # Every Linux field the schema describes, set to a plausible value.
    config = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "none", "source": "/srv/data",
             "options": ["rbind", "idmap"],
             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
        ],
        "process": {
            "terminal": True, "consoleSize": {"height": 24, "width": 80},
            "cwd": "/", "env": ["PATH=/bin", "EMPTY="], "args": ["sh"],
            "commandLine": "sh",
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
            "apparmorProfile": "unconfined",
            "capabilities": {s: ["CAP_CHOWN"] for s in
                             ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "noNewPrivileges": True, "oomScoreAdj": -500,
            "scheduler": {"policy": "SCHED_FIFO", "priority": 10, "nice": 0,
                          "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
            "selinuxLabel": "system_u:system_r:container_t:s0",
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "execCPUAffinity": {"initial": "0", "final": "0-1"},
            "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5],
                     "username": "me"},
        },
        "hostname": "box", "domainname": "example",
        "hooks": {kind: [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]
                  for kind in ("prestart", "createRuntime", "createContainer",
                               "startContainer", "poststart", "poststop")},
        "annotations": {"org.example.key": "value"},
        "linux": {
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 5},
                            "boottime": {"secs": -3}},
            "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                         "fileMode": 438, "uid": 0, "gid": 0},
                        {"type": "p", "path": "/dev/pipe"}],
            "netDevices": {"eth1": {"name": "ctr0"}, "eth2": {}},
            "cgroupsPath": "/pyoci/c1",
            "resources": {
                "devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 1, "minor": 3,
                             "access": "rw"}],
                "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 1 << 31,
                           "kernel": -1, "kernelTCP": -1, "swappiness": 10,
                           "disableOOMKiller": False, "useHierarchy": True,
                           "checkBeforeUpdate": True},
                "cpu": {"shares": 1024, "quota": 100000, "burst": 1000, "period": 100000,
                        "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "0-1",
                        "mems": "0", "idle": 0},
                "blockIO": {"weight": 500, "leafWeight": 300,
                            "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}],
                            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
                "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
                "pids": {"limit": -1},
                "rdma": {"mlx5_1": {"hcaHandles": 3}},
                "unified": {"memory.high": "max"},
            },
            "intelRdt": {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0",
                         "memBwSchema": "MB:0=20", "schemata": ["L2:0=ff"],
                         "enableMonitoring": True},
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "listenerPath": "/run/agent.sock", "listenerMetadata": "meta",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "valueTwo": 0,
                                        "op": "SCMP_CMP_EQ"}]},
                             {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
            },
            "rootfsPropagation": "slave",
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
            "mountLabel": "system_u:object_r:container_file_t:s0",
            "personality": {"domain": "LINUX32", "flags": []},
            "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0",
                             "flags": ["MPOL_F_STATIC_NODES"]},
        },
    }
    assert schema_errors(config, "config") == []
