"""User namespaces, run by root: id maps, who owns what on the host, and what the
container's mounts become inside a user namespace (runc's rules)."""

from __future__ import annotations

import fcntl
import os
import signal

from tests.e2e.userns_support import (NsEnv, bind, ns_env, ns_rootfs,  # noqa: F401
                                      skip_for_runc, wait_for_file, with_user_ns, without_ns)

NS_GET_USERNS = 0xB701


def _start_detached(env: NsEnv, config: dict, prefix: str = "userns") -> tuple[str, int]:
    bundle = env.bundle(config)
    cid = env.runtime.new_id(prefix)
    r = env.runtime("run", "--detach", "--bundle", str(bundle), cid)
    assert r.returncode == 0, r.stderr
    return cid, env.runtime.state(cid)["pid"]


def _stop(env: NsEnv, cid: str) -> None:
    assert env.runtime("kill", cid, "KILL").returncode == 0
    env.runtime.wait_status(cid, "stopped")
    r = env.runtime("delete", cid)
    assert r.returncode == 0, r.stderr


def _status_ids(pid: int, key: str) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(v) for v in line.split()[1:]]
    raise AssertionError(f"{key} missing from /proc/{pid}/status")


def test_root_inside_is_100000_outside(ns_env: NsEnv) -> None:
    data = ns_env.host_dir("data", 100000, 100000)
    config = with_user_ns(ns_env.config())
    config["mounts"].append(bind(data, "/data"))
    config["process"]["args"] = ["sh", "-c", "id -u > /data/uid; id -g >> /data/uid; "
                                 "cat /proc/self/uid_map > /data/map; touch /data/made; "
                                 "echo done > /data/ready; exec sleep 60"]
    cid, pid = _start_detached(ns_env, config)
    wait_for_file(data / "ready")
    assert (data / "uid").read_text().split() == ["0", "0"]
    assert (data / "map").read_text().split() == ["0", "100000", "65536"]
    made = (data / "made").stat()
    assert (made.st_uid, made.st_gid) == (100000, 100000)
    assert _status_ids(pid, "Uid") == [100000] * 4
    assert _status_ids(pid, "Gid") == [100000] * 4
    _stop(ns_env, cid)


def test_multi_range_maps(ns_env: NsEnv) -> None:
    data = ns_env.host_dir("data", 0, 0, 0o1777)
    config = with_user_ns(ns_env.config())
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000},
                                      {"containerID": 1000, "hostID": 200000, "size": 1000}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000},
                                      {"containerID": 1000, "hostID": 200000, "size": 1000}]
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["mounts"].append(bind(data, "/data"))
    config["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map "
                                 "> /data/maps; id -u > /data/uid; touch /data/made"]
    r = ns_env.runtime("run", "--bundle", str(ns_env.bundle(config)), ns_env.runtime.new_id("userns"))
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in (data / "maps").read_text().splitlines()]
    assert rows == [["0", "100000", "1000"], ["1000", "200000", "1000"]] * 2
    assert (data / "uid").read_text().strip() == "1000"
    made = (data / "made").stat()
    assert (made.st_uid, made.st_gid) == (200000, 200000)


def test_new_namespaces_belong_to_the_user_namespace(ns_env: NsEnv) -> None:
    config = with_user_ns(ns_env.config())
    config["process"]["args"] = ["sleep", "60"]
    cid, pid = _start_detached(ns_env, config)
    user_ino = os.stat(f"/proc/{pid}/ns/user").st_ino
    assert user_ino != os.stat("/proc/self/ns/user").st_ino
    for name in ("mnt", "uts", "ipc", "net", "pid", "cgroup"):
        fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY)
        try:
            owner = fcntl.ioctl(fd, NS_GET_USERNS)
            try:
                assert os.fstat(owner).st_ino == user_ino, name
            finally:
                os.close(owner)
        finally:
            os.close(fd)
    _stop(ns_env, cid)


def test_devices_and_sys_without_network_namespace(ns_env: NsEnv) -> None:
    """No mknod in a user namespace: devices are the host's nodes, bound. Without its
    own network namespace sysfs cannot be mounted: /sys is the host's, bound."""
    skip_for_runc("mounts sysfs as the config says and fails with EPERM without a network "
                  "namespace; only its `spec --rootless` writes the /sys bind into the config")
    data = ns_env.host_dir("data", 100000, 100000)
    config = without_ns(with_user_ns(ns_env.config()), "network")
    config["mounts"].append(bind(data, "/data"))
    config["process"]["args"] = ["sh", "-c", "stat -c '%t %T %F' /dev/null /dev/zero > /data/dev; "
                                 "echo x > /dev/null && head -c 4 /dev/zero | wc -c >> /data/dev; "
                                 "ls /sys/class/net > /data/net"]
    r = ns_env.runtime("run", "--bundle", str(ns_env.bundle(config)), ns_env.runtime.new_id("userns"))
    assert r.returncode == 0, r.stderr
    dev = (data / "dev").read_text().splitlines()
    assert dev[0] == "1 3 character special file"
    assert dev[1] == "1 5 character special file"
    assert dev[2].strip() == "4"
    assert (data / "net").read_text().split() == sorted(os.listdir("/sys/class/net"))


def test_sysfs_of_its_own_with_a_network_namespace(ns_env: NsEnv) -> None:
    data = ns_env.host_dir("data", 100000, 100000)
    config = with_user_ns(ns_env.config())
    config["mounts"].append(bind(data, "/data"))
    config["process"]["args"] = ["sh", "-c", "ls /sys/class/net > /data/net"]
    r = ns_env.runtime("run", "--bundle", str(ns_env.bundle(config)), ns_env.runtime.new_id("userns"))
    assert r.returncode == 0, r.stderr
    assert (data / "net").read_text().split() == ["lo"]


def test_exec_fifo_belongs_to_the_container_root(ns_env: NsEnv) -> None:
    config = with_user_ns(ns_env.config())
    cid = ns_env.runtime.new_id("userns")
    r = ns_env.runtime("create", "--bundle", str(ns_env.bundle(config)), cid)
    assert r.returncode == 0, r.stderr
    fifo = ns_env.runtime.root / cid / "exec.fifo"
    st = fifo.stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert ns_env.runtime("start", cid).returncode == 0
    ns_env.runtime.wait_status(cid, "stopped")
    assert ns_env.runtime("delete", cid).returncode == 0


def test_rlimits_and_oom_score_in_a_user_namespace(ns_env: NsEnv) -> None:
    """Set from the host side where a process in a user namespace could not set them.
    (Raising a hard limit needs CAP_SYS_RESOURCE, which this CI host's root lacks: the
    limits here stay under the host's.)"""
    config = with_user_ns(ns_env.config())
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 2048}]
    config["process"]["oomScoreAdj"] = 321
    config["process"]["args"] = ["sleep", "60"]
    cid, pid = _start_detached(ns_env, config)
    with open(f"/proc/{pid}/limits") as f:
        row = next(line for line in f if line.startswith("Max open files"))
    assert row.split()[3:5] == ["2048", "4096"]
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "321"
    os.kill(pid, signal.SIGKILL)
    ns_env.runtime.wait_status(cid, "stopped")
    assert ns_env.runtime("delete", cid).returncode == 0
