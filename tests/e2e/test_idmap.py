"""Idmapped bind mounts: host files seen through a mount's own uid/gid map.

A mapping `containerID -> hostID` on a mount shows a file whose on-disk owner is
containerID as owned by hostID (then seen through the container's user namespace, if
any), and files created through the mount are written back with the on-disk id.
runc 1.1.5 has no idmapped mounts (they came in runc 1.2).
"""

from __future__ import annotations

import os

from pyoci.linux import idmapped
from tests.e2e.userns_support import (NsEnv, bind, ns_env, ns_rootfs,  # noqa: F401
                                      skip_for_runc, with_user_ns)

NO_IDMAP = "no idmapped mounts before runc 1.2"


def _idmapped(source: object, destination: str, container_id: int, host_id: int,
              *options: str) -> dict:
    mount = bind(source, destination, *options)
    mapping = [{"containerID": container_id, "hostID": host_id, "size": 1}]
    mount["uidMappings"] = mapping
    mount["gidMappings"] = list(mapping)
    return mount


def _run(env: NsEnv, config: dict) -> None:
    r = env.runtime("run", "--bundle", str(env.bundle(config)), env.runtime.new_id("userns"))
    assert r.returncode == 0, r.stderr


def test_uid_1000_appears_as_root_and_writes_back_as_1000(ns_env: NsEnv) -> None:
    skip_for_runc(NO_IDMAP)
    shared = ns_env.host_dir("shared", 1000, 1000)
    (shared / "owned").write_text("x")
    (shared / "owned").chmod(0o644)
    os.chown(shared / "owned", 1000, 1000)
    out = ns_env.host_dir("out")
    config = ns_env.config()
    config["mounts"] += [_idmapped(shared, "/shared", 1000, 0, "idmap"), bind(out, "/out")]
    config["process"]["args"] = ["sh", "-c", "stat -c '%u %g' /shared /shared/owned > /out/seen;"
                                 " touch /shared/new"]
    _run(ns_env, config)
    assert (out / "seen").read_text().split() == ["0", "0", "0", "0"]
    st = (shared / "new").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_idmapped_mount_in_a_user_namespace(ns_env: NsEnv) -> None:
    """The mount's map takes on-disk 1000 to host 100000, the container's root."""
    skip_for_runc(NO_IDMAP)
    shared = ns_env.host_dir("shared", 1000, 1000)
    out = ns_env.host_dir("out", 100000, 100000)
    config = with_user_ns(ns_env.config())
    config["mounts"] += [_idmapped(shared, "/shared", 1000, 100000, "idmap"), bind(out, "/out")]
    config["process"]["args"] = ["sh", "-c", "stat -c '%u %g' /shared > /out/seen; "
                                 "id -u >> /out/seen; touch /shared/new"]
    _run(ns_env, config)
    assert (out / "seen").read_text().split() == ["0", "0", "0"]
    st = os.stat(shared / "new")
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_idmap_option_takes_the_user_namespace_mapping(ns_env: NsEnv) -> None:
    """`idmap` without mappings: the container's own map, so a root-owned host directory
    is root's inside instead of nobody's."""
    skip_for_runc(NO_IDMAP)
    shared = ns_env.host_dir("shared", 0, 0, 0o755)
    out = ns_env.host_dir("out", 100000, 100000)
    config = with_user_ns(ns_env.config())
    config["mounts"] += [bind(shared, "/shared", "idmap"), bind(out, "/out"),
                         bind(shared, "/plain")]
    config["process"]["args"] = ["sh", "-c", "stat -c '%u' /shared /plain > /out/seen; "
                                 "touch /shared/new"]
    _run(ns_env, config)
    assert (out / "seen").read_text().split() == ["0", "65534"]
    assert os.stat(shared / "new").st_uid == 0


def test_recursive_idmap_reaches_submounts(ns_env: NsEnv) -> None:
    skip_for_runc(NO_IDMAP)
    shared = ns_env.host_dir("shared", 1000, 1000)
    out = ns_env.host_dir("out")
    config = ns_env.config()
    config["mounts"] += [_idmapped(shared, "/shared", 1000, 0, "rbind", "ridmap"),
                         bind(out, "/out")]
    config["process"]["args"] = ["sh", "-c", "stat -c '%u' /shared > /out/seen"]
    _run(ns_env, config)
    assert (out / "seen").read_text().split() == ["0"]


def test_idmap_of_a_non_bind_mount_is_a_clear_error(ns_env: NsEnv) -> None:
    skip_for_runc(NO_IDMAP)
    config = ns_env.config()
    mount = {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
             "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
             "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
    config["mounts"].append(mount)
    cid = ns_env.runtime.new_id("userns")
    r = ns_env.runtime("run", "--bundle", str(ns_env.bundle(config)), cid)
    assert r.returncode == 1
    assert "idmapped mounts are supported for bind mounts only" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (ns_env.runtime.root / cid).exists()


def test_support_probe_for_features() -> None:
    """What `features` reports as mountExtensions.idmap: true here, as root on ext4/tmpfs."""
    assert idmapped.supported()
