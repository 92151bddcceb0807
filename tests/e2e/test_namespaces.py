"""The cgroup and time namespaces, and joining existing namespaces by path."""

from __future__ import annotations

import os
import time

from tests.e2e.userns_support import (NsEnv, bind, cgroup_dirs, ns_env, ns_rootfs,  # noqa: F401
                                      skip_for_runc, wait_for_file, with_user_ns)

MONOTONIC_OFFSET = 7 * 86400
BOOTTIME_OFFSET = 11 * 86400


def _run(env: NsEnv, config: dict, name: str = "bundle") -> None:
    r = env.runtime("run", "--bundle", str(env.bundle(config, name)), env.runtime.new_id("ns"))
    assert r.returncode == 0, r.stderr


def _detached(env: NsEnv, config: dict, name: str) -> tuple[str, int]:
    cid = env.runtime.new_id("ns")
    r = env.runtime("run", "--detach", "--bundle", str(env.bundle(config, name)), cid)
    assert r.returncode == 0, r.stderr
    return cid, env.runtime.state(cid)["pid"]


def test_cgroup_namespace_sees_itself_at_root(ns_env: NsEnv) -> None:
    out = ns_env.host_dir("out")
    config = ns_env.config()
    assert {"type": "cgroup"} in config["linux"]["namespaces"]
    config["mounts"].append(bind(out, "/out"))
    config["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup > /out/cgroup; "
                                 "cat /sys/fs/cgroup/pids/cgroup.procs > /out/procs"]
    _run(ns_env, config)
    lines = (out / "cgroup").read_text().splitlines()
    assert lines and all(line.split(":", 2)[2] == "/" for line in lines), lines
    # The cgroup mount is a fresh cgroupfs of the namespace: its root is the container's
    # cgroup, which holds the container's pid 1.
    assert "1" in (out / "procs").read_text().split()


def test_without_cgroup_namespace_the_host_path_shows(ns_env: NsEnv) -> None:
    out = ns_env.host_dir("out")
    config = ns_env.config()
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "cgroup"]
    config["mounts"].append(bind(out, "/out"))
    config["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup > /out/cgroup"]
    _run(ns_env, config)
    paths = {line.split(":", 2)[2] for line in (out / "cgroup").read_text().splitlines()}
    assert f"/pyoci-e2e/{ns_env.cgroup_name}" in paths


def test_time_namespace_offsets_the_clocks(ns_env: NsEnv) -> None:
    skip_for_runc("no time namespace before runc 1.2")
    out = ns_env.host_dir("out")
    config = ns_env.config()
    config["linux"]["namespaces"].append({"type": "time"})
    config["linux"]["timeOffsets"] = {"monotonic": {"secs": MONOTONIC_OFFSET, "nanosecs": 0},
                                      "boottime": {"secs": BOOTTIME_OFFSET, "nanosecs": 0}}
    # The host's /usr, for a python3 that reads both clocks.
    config["mounts"] += [bind("/usr", "/usr", "rbind", "ro"), bind(out, "/out")]
    config["process"]["args"] = [
        "/usr/bin/python3", "-S", "-c",
        "import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), "
        "time.clock_gettime(time.CLOCK_BOOTTIME), file=open('/out/clocks', 'w'))"]
    before_mono = time.clock_gettime(time.CLOCK_MONOTONIC)
    before_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    _run(ns_env, config)
    after_mono = time.clock_gettime(time.CLOCK_MONOTONIC)
    after_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    mono, boot = (float(v) for v in (out / "clocks").read_text().split())
    # The container's readings fall between the host's, shifted by the offsets.
    assert before_mono + MONOTONIC_OFFSET <= mono <= after_mono + MONOTONIC_OFFSET
    assert before_boot + BOOTTIME_OFFSET <= boot <= after_boot + BOOTTIME_OFFSET


def test_second_container_joins_the_network_namespace(ns_env: NsEnv) -> None:
    out = ns_env.host_dir("out", 0, 0, 0o777)
    first = ns_env.config()
    first["mounts"].append(bind(out, "/out"))
    # The listener's stdin must not hit EOF (busybox nc would hang up before reading).
    first["process"]["args"] = ["sh", "-c", "ls /sys/class/net > /out/first-net; "
                                "sleep 60 | nc -l -p 5555 > /out/received"]
    cid, pid = _detached(ns_env, first, "first")
    try:
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        second = ns_env.config()
        second["linux"]["cgroupsPath"] += "-second"
        second["linux"]["namespaces"] = [
            {"type": "network", "path": f"/proc/{pid}/ns/net"} if n["type"] == "network" else n
            for n in second["linux"]["namespaces"]]
        second["mounts"].append(bind(out, "/out"))
        second["process"]["args"] = [
            "sh", "-c", "ls /sys/class/net > /out/second-net; "
            "for i in $(seq 100); do echo hello-from-second | nc 127.0.0.1 5555 && exit 0; "
            "sleep 0.1; done; exit 1"]
        _run(ns_env, second, "second")
        assert wait_for_file(out / "received").strip() == "hello-from-second"
        assert (out / "second-net").read_text() == (out / "first-net").read_text()
    finally:
        ns_env.runtime("delete", "--force", cid)
    assert not cgroup_dirs(ns_env.cgroup_name + "-second")


def test_joining_pid_and_user_namespaces(ns_env: NsEnv) -> None:
    """Joined by path, the user namespace first: the second container sees the first's
    map and the first's processes (its pid 1 is the first's init)."""
    out = ns_env.host_dir("out", 0, 0, 0o777)
    first = with_user_ns(ns_env.config())
    first["process"]["args"] = ["sleep", "60"]
    cid, pid = _detached(ns_env, first, "first")
    try:
        second = ns_env.config()
        second["linux"]["cgroupsPath"] += "-second"
        joined = {"pid": "pid"}
        second["linux"]["namespaces"] = [
            {"type": n["type"], "path": f"/proc/{pid}/ns/{joined[n['type']]}"}
            if n["type"] in joined else n for n in second["linux"]["namespaces"]]
        second["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
        # The namespace's own map, repeated: runc 1.1 wants it to find the root's host id.
        second["linux"]["uidMappings"] = first["linux"]["uidMappings"]
        second["linux"]["gidMappings"] = first["linux"]["gidMappings"]
        second["mounts"].append(bind(out, "/out"))
        second["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map > /out/map; "
                                     "cat /proc/1/cmdline | tr '\\0' ' ' > /out/pid1"]
        _run(ns_env, second, "second")
        assert (out / "map").read_text().split() == ["0", "100000", "65536"]
        assert (out / "pid1").read_text().split() == ["sleep", "60"]
    finally:
        ns_env.runtime("delete", "--force", cid)


def _refused(env: NsEnv, ns_type: str, path: str) -> str:
    config = env.config()
    config["linux"]["namespaces"] = [
        {"type": ns_type, "path": path} if n["type"] == ns_type else n
        for n in config["linux"]["namespaces"]]
    cid = env.runtime.new_id("ns")
    r = env.runtime("run", "--bundle", str(env.bundle(config)), cid)
    assert r.returncode != 0
    assert r.stderr.strip()
    # Nothing left behind: no state, no cgroup (the guard also checks the mounts).
    assert not (env.runtime.root / cid).exists()
    assert not cgroup_dirs(env.cgroup_name)
    return r.stderr.strip()


def test_path_that_is_not_a_namespace(ns_env: NsEnv) -> None:
    message = _refused(ns_env, "network", "/etc/hostname")
    if not ns_env.runtime.binary.endswith("runc"):
        assert message.count("\n") == 0
        assert "network namespace path /etc/hostname: not a network namespace" in message


def test_namespace_of_the_wrong_type(ns_env: NsEnv) -> None:
    message = _refused(ns_env, "network", "/proc/self/ns/ipc")
    if not ns_env.runtime.binary.endswith("runc"):
        assert message.count("\n") == 0
        assert "network namespace path /proc/self/ns/ipc: not a network namespace" in message


def test_namespace_path_that_does_not_exist(ns_env: NsEnv) -> None:
    message = _refused(ns_env, "ipc", "/proc/self/ns/missing")
    if not ns_env.runtime.binary.endswith("runc"):
        assert message.count("\n") == 0
        assert "ipc namespace path /proc/self/ns/missing: no such file or directory" in message
