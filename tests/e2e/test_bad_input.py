"""Bad input of every kind: a non-zero exit, one clear line, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Bundle, Result, Runtime


def processes_of(bundle: Bundle) -> list[int]:
    """The processes in the container's cgroup (none if the cgroup is gone)."""
    procs = Path("/sys/fs/cgroup/pids") / bundle.config["linux"]["cgroupsPath"].strip("/") / "cgroup.procs"
    try:
        return sorted(int(pid) for pid in procs.read_text().split())
    except FileNotFoundError:
        return []


def assert_refused(runtime: Runtime, r: Result, *phrases: str) -> None:
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    for phrase in phrases:
        assert phrase in r.stderr, r.stderr
    if runtime.is_pyoci:
        assert len(lines) == 1, r.stderr


def processes_naming(cid: str) -> list[int]:
    """Live processes whose command line names the container (a runtime's children)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if cid.encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def assert_nothing_left(runtime: Runtime, bundle: Bundle, cid: str) -> None:
    assert not (runtime.root / cid).exists(), "state directory left behind"
    assert runtime("state", cid).returncode != 0
    assert processes_of(bundle) == []
    assert processes_naming(cid) == []
    cgroup = bundle.config["linux"].get("cgroupsPath", "").strip("/")
    if cgroup:
        assert not (Path("/sys/fs/cgroup/pids") / cgroup).exists(), "cgroup left behind"


def refused_create(runtime: Runtime, bundle: Bundle, *phrases: str,
                   pyoci_says: str | None = None) -> None:
    """create of the bundle as configured now: refused, and nothing left behind."""
    bundle.write()
    cid = runtime.new_id()
    r = runtime("create", "--bundle", str(bundle.path), cid)
    assert_refused(runtime, r, *phrases)
    if pyoci_says is not None and runtime.is_pyoci:
        assert pyoci_says in r.stderr
    assert_nothing_left(runtime, bundle, cid)


def test_malformed_json(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.path / "config.json").write_text('{"ociVersion": "1.3.0", "process": {')
    cid = runtime.new_id()
    r = runtime("create", "--bundle", str(bundle.path), cid)
    assert_refused(runtime, r)
    if runtime.is_pyoci:
        assert "config.json: invalid JSON" in r.stderr
    assert_nothing_left(runtime, bundle, cid)


def test_schema_violation_names_the_field(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["args"] = []
    refused_create(runtime, bundle, "args",
                   pyoci_says="config.json: process.args: must contain at least 1 item")


def test_wrong_type_names_the_field(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["user"]["uid"] = "root"
    refused_create(runtime, bundle, pyoci_says="process.user.uid")


def test_missing_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["root"]["path"] = str(tmp_path / "no-such-rootfs")
    bundle.write()
    cid = runtime.new_id()
    r = runtime("create", "--bundle", str(bundle.path), cid)
    assert_refused(runtime, r, "no-such-rootfs")
    assert not (runtime.root / cid).exists()


def test_cgroup_value_the_kernel_refuses(runtime: Runtime, bundle: Bundle) -> None:
    # Refused while the runtime's first child already exists (it prepares the init
    # while the cgroup is made): that child must go too.
    bundle.config["linux"]["resources"] = {"cpu": {"cpus": "999"}}
    refused_create(runtime, bundle, "cpuset.cpus")


def test_seccomp_flag_libseccomp_refuses(runtime: Runtime, bundle: Bundle) -> None:
    # Found by the runtime's first child before the parent lets it go on.
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    refused_create(runtime, bundle, "flags",
                   pyoci_says="linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")


@pytest.mark.parametrize("bad_id", ["a/b", "..", "../escape", "with space", "caf\u00e9"])
def test_bad_container_id(runtime: Runtime, bundle: Bundle, bad_id: str) -> None:
    r = runtime("create", "--bundle", str(bundle.path), bad_id)
    assert_refused(runtime, r)
    assert not (runtime.root.parent / "escape").exists()
    if runtime.root.exists():
        assert os.listdir(runtime.root) == []
    assert processes_of(bundle) == []


def test_duplicate_id(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(bundle.path), cid).returncode == 0
    first = runtime.state(cid)
    r = runtime("create", "--bundle", str(bundle.path), cid)
    assert_refused(runtime, r, "already exists")
    # The first container is untouched, and no second init exists.
    assert runtime.state(cid) == first
    assert processes_of(bundle) == [first["pid"]]
    assert runtime("delete", cid).returncode == 0
    assert_nothing_left(runtime, bundle, cid)


def test_unknown_signal(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "60")
    cid = runtime.new_id()
    assert runtime("run", "-d", "--bundle", str(bundle.path), cid).returncode == 0
    r = runtime("kill", cid, "SIGNOPE")
    assert_refused(runtime, r, "SIGNOPE")
    assert runtime.state(cid)["status"] == "running"
    assert runtime("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("command", [["start"], ["state"], ["kill"], ["kill", "--all"],
                                     ["delete"], ["pause"], ["resume"]])
def test_operations_on_a_missing_container(runtime: Runtime, command: list[str]) -> None:
    cid = runtime.new_id()
    r = runtime(*command, cid)
    assert_refused(runtime, r, "does not exist")


def test_delete_force_of_a_missing_container_succeeds(runtime: Runtime) -> None:
    assert runtime("delete", "--force", runtime.new_id()).returncode == 0


def test_operations_in_the_wrong_state(runtime: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sh", "-c", "exit 0")
    cid = runtime.new_id()
    assert runtime("run", "-d", "--bundle", str(bundle.path), cid).returncode == 0
    runtime.wait_status(cid, "stopped")
    assert_refused(runtime, runtime("start", cid), "stopped")
    assert_refused(runtime, runtime("kill", cid, "KILL"), "not running")
    assert_refused(runtime, runtime("pause", cid), "not running")
    # kill --all of a stopped container is not an error (containerd relies on it).
    assert runtime("kill", "--all", cid, "KILL").returncode == 0
    assert runtime("delete", cid).returncode == 0


def test_json_log_records_the_error(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    cid = runtime.new_id()
    r = runtime("--log", str(log), "--log-format", "json", "start", cid)
    assert r.returncode != 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries[-1]["level"] == "error"
    assert "does not exist" in entries[-1]["msg"]
    assert entries[-1]["time"].endswith("Z") or "+" in entries[-1]["time"]


def test_damaged_state_is_reported_and_delete_force_removes_it(runtime: Runtime,
                                                                bundle: Bundle) -> None:
    if not runtime.is_pyoci:
        pytest.skip("runc keeps its state elsewhere in the container directory")
    bundle.set_args("true")
    cid = runtime.new_id()
    assert runtime("run", "--bundle", str(bundle.path), "--keep", cid).returncode == 0
    (runtime.root / cid / "state.json").write_text("{not json")
    r = runtime("state", cid)
    assert_refused(runtime, r, "damaged")
    assert_refused(runtime, runtime("delete", cid), "damaged")
    assert runtime("delete", "--force", cid).returncode == 0
    assert not (runtime.root / cid).exists()
    # With its record gone, the container's cgroup could not be found: that much is
    # left for the caller (the test) to remove.
    cgroup = bundle.config["linux"]["cgroupsPath"].strip("/")
    for base in Path("/sys/fs/cgroup").iterdir():
        if (base / cgroup).is_dir():
            (base / cgroup).rmdir()
