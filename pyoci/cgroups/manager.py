"""One container's cgroup across every hierarchy of the host (cgroupfs driver).

Directories are decided up front (`cgroup_for`) and kept in state.json, so later commands
never re-resolve relative paths against a different caller's cgroup.
"""

from __future__ import annotations

import errno
import os
import signal
import time
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from pyoci.cgroups import fs
from pyoci.cgroups.layout import UNIFIED, Layout
from pyoci.errors import PyociError, SyscallError

_FREEZE_TRIES = 1000        # x 1-10 ms: a freeze normally settles in well under a second
_RMDIR_TRIES = 10


class Cgroup:
    # A plain class (see layout.py): the light commands build one from state.json.
    def __init__(self, container_id: str, mode: str, dirs: dict[str, str],
                 tops: dict[str, str], made: list[str] | None = None,
                 resources: dict[str, Any] | None = None, rootless: bool = False) -> None:
        self.container_id = container_id
        self.mode = mode                    # "v1", "v2", "hybrid"
        self.dirs = dirs                    # hierarchy key (controller, "name=systemd", "") -> dir
        self.tops = tops                    # hierarchy key -> mountpoint (for subtree_control)
        self.made = made if made is not None else []   # directories create() made, parents first
        self.resources = resources if resources is not None else {}  # effective linux.resources
        self.rootless = rootless

    # --- persistence ---------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"driver": "cgroupfs", "mode": self.mode, "dirs": dict(self.dirs),
                "tops": dict(self.tops), "made": list(self.made),
                "resources": self.resources, "rootless": self.rootless}

    @classmethod
    def from_state(cls, container_id: str, saved: dict[str, Any]) -> "Cgroup":
        try:
            return cls(container_id, saved["mode"], dict(saved["dirs"]), dict(saved["tops"]),
                       list(saved.get("made", [])), dict(saved.get("resources") or {}),
                       bool(saved.get("rootless", False)))
        except (KeyError, TypeError) as e:
            raise PyociError(f"state.json: cgroup record is damaged ({e})") from None

    # --- where things are ------------------------------------------------------------

    def unique_dirs(self) -> list[str]:
        """Each directory once (co-mounted controllers share one)."""
        seen: list[str] = []
        for d in self.dirs.values():
            if d not in seen:
                seen.append(d)
        return seen

    def v1_dirs(self) -> dict[str, str]:
        return {k: v for k, v in self.dirs.items() if k != UNIFIED}

    @property
    def unified_dir(self) -> str | None:
        return self.dirs.get(UNIFIED)

    def _primary(self) -> str | None:
        """The directory whose membership answers "which processes are in the container"."""
        for key in ("freezer", "pids", "memory", UNIFIED, "name=systemd"):
            if key in self.dirs:
                return self.dirs[key]
        return next(iter(self.dirs.values()), None)

    # --- create / destroy ------------------------------------------------------------

    def create(self, resources: dict | None, *, linux_devices: list[tuple[str, int, int]] = (),  # type: ignore[assignment]
               default_devices: bool = True) -> None:
        """Make the directories, then apply `resources`; on failure remove what was made.

        `linux_devices` are (type, major, minor) of the nodes config.json creates: they
        are allowed like runc allows them. `default_devices` adds runc's standard set.
        """
        from pyoci.cgroups import resources as res_mod
        parsed = res_mod.from_json(resources)
        self.resources = dict(resources or {})
        try:
            self._make_dirs()
        except SyscallError as e:
            self._remove_made()
            if self.rootless and e.errno in (errno.EPERM, errno.EACCES, errno.EROFS) \
                    and not _asks_limits(parsed):
                # Rootless without delegation: run without a cgroup, as runc does.
                self.dirs, self.made = {}, []
                return
            raise
        try:
            self._apply(parsed, linux_devices=linux_devices, default_devices=default_devices)
        except BaseException:
            self._remove_made()
            raise

    def _make_dirs(self) -> None:
        from pyoci.cgroups import v1
        for key, d in self.dirs.items():
            top = self.tops[key]
            missing: list[str] = []
            probe = d
            while probe != top and not os.path.isdir(probe):
                missing.append(probe)
                probe = os.path.dirname(probe)
            for new in reversed(missing):
                try:
                    os.mkdir(new, 0o755)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise SyscallError(f"create cgroup {new}", e.errno or 0) from None
                if new not in self.made:
                    self.made.append(new)
                if key == "cpuset":
                    v1.cpuset_inherit(os.path.dirname(new), new)

    def _apply(self, res: Any, *, linux_devices: Any = (), default_devices: bool = True,
               devices: bool = True) -> None:
        from pyoci.cgroups import v1, v2
        v1dirs = self.v1_dirs()
        unified = self.unified_dir
        if self.mode == "v2":
            assert unified is not None
            v2.enable_controllers(self.tops[UNIFIED], unified,
                                  v2.controllers_needed(res) | _default_v2_controllers(
                                      self.tops[UNIFIED]))
            v2.apply(unified, res)
        else:
            v1.apply(v1dirs, res)
            if res.hugepage_limits and "hugetlb" in v1dirs:
                for page in res.hugepage_limits:
                    v1.hugetlb(v1dirs["hugetlb"], page.page_size, page.limit)
                res_v2 = _only_unified_keys(res)
            else:
                res_v2 = res
            if res_v2.unified or res_v2.hugepage_limits:
                if unified is None:
                    from pyoci.errors import ConfigError
                    raise ConfigError("linux.resources.unified/hugepageLimits: this host has "
                                      "no cgroup2 hierarchy and no v1 hugetlb controller")
                v2.enable_controllers(self.tops[UNIFIED], unified,
                                      v2.controllers_needed(_only_unified_parts(res_v2)))
                v2.apply(unified, res_v2, hugetlb_only=True)
        if devices:
            self._apply_devices(res, linux_devices, default_devices)

    def _apply_devices(self, res: Any, linux_devices: Any, default_devices: bool) -> None:
        from pyoci.cgroups import devices
        rules = devices.container_rules(res.devices, list(linux_devices), default_devices)
        state = devices.reduce_rules(rules)
        if "devices" in self.dirs:
            devices.write_v1(self.dirs["devices"], state)
        if self.unified_dir is not None:
            # cgroup2 checks its program in addition to the v1 list; on hybrid hosts both
            # guard the container, on pure v2 the program is the only guard.
            devices.apply_v2(self.unified_dir, state)

    def _remove_made(self) -> None:
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.made = []

    def destroy(self) -> None:
        """Remove the container's directories (and sub-cgroups it made) on every
        hierarchy, then the parents create() made if nothing else uses them."""
        failures: list[str] = []
        for d in self.unique_dirs():
            try:
                _rmtree_cgroup(d)
            except SyscallError as e:
                failures.append(e.message)
        for d in reversed(self.made):
            if d in self.dirs.values():
                continue
            try:
                os.rmdir(d)
            except OSError:
                pass  # shared with another container, or gone already
        if failures:
            raise PyociError("remove cgroup: " + "; ".join(failures))

    # --- processes -------------------------------------------------------------------

    def add_process(self, pid: int) -> None:
        for d in self.unique_dirs():
            try:
                fs.write(d, "cgroup.procs", pid)
            except SyscallError as e:
                if self.rootless and e.errno in (errno.EPERM, errno.EACCES) \
                        and not _asks_limits_json(self.resources):
                    continue
                raise

    def pids(self) -> list[int]:
        d = self._primary()
        if d is None or not os.path.isdir(d):
            return []
        return sorted(set(fs.read_pids(d)))

    def signal_all(self, sig: int) -> None:
        """Signal every process in the cgroup, including ones that left the init's
        session or process group. Frozen while enumerating, so none can fork away."""
        if not self.dirs:
            return
        unified = self.unified_dir
        if sig == signal.SIGKILL and unified and fs.exists(unified, "cgroup.kill") \
                and os.path.isdir(unified):
            fs.write(unified, "cgroup.kill", 1)
            if not self.pids():
                return
        was_frozen = self.is_frozen()
        can_freeze = self._freezer() is not None
        if can_freeze and not was_frozen:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if can_freeze and (not was_frozen or sig == signal.SIGKILL):
                self.thaw()

    # --- freezer -----------------------------------------------------------------------

    def _freezer(self) -> tuple[str, str] | None:
        if "freezer" in self.dirs:
            return "v1", self.dirs["freezer"]
        if self.unified_dir is not None and fs.exists(self.unified_dir, "cgroup.freeze"):
            return "v2", self.unified_dir
        return None

    def freeze(self) -> None:
        kind, d = self._need_freezer()
        if kind == "v1":
            for i in range(_FREEZE_TRIES):
                # Re-writing FROZEN nudges tasks that were forking when it started.
                if i % 10 == 0:
                    fs.write(d, "freezer.state", "FROZEN")
                if fs.read(d, "freezer.state") == "FROZEN":
                    return
                time.sleep(0.001 if i < 10 else 0.01)
            fs.write(d, "freezer.state", "THAWED")
            raise PyociError(f"freeze {d}: processes did not freeze in time")
        fs.write(d, "cgroup.freeze", 1)
        for i in range(_FREEZE_TRIES):
            if _events(d).get("frozen") == 1:
                return
            time.sleep(0.001 if i < 10 else 0.01)
        fs.write(d, "cgroup.freeze", 0)
        raise PyociError(f"freeze {d}: processes did not freeze in time")

    def thaw(self) -> None:
        kind, d = self._need_freezer()
        if kind == "v1":
            fs.write(d, "freezer.state", "THAWED")
        else:
            fs.write(d, "cgroup.freeze", 0)

    def is_frozen(self) -> bool:
        found = self._freezer()
        if found is None:
            return False
        kind, d = found
        try:
            if kind == "v1":
                return fs.read(d, "freezer.state") == "FROZEN"
            return fs.read(d, "cgroup.freeze") == "1"
        except SyscallError:
            return False  # cgroup gone: not paused

    def _need_freezer(self) -> tuple[str, str]:
        found = self._freezer()
        if found is None:
            raise PyociError(f"container {self.container_id}: no freezer cgroup (neither a v1 "
                             f"freezer hierarchy nor cgroup.freeze) on this host")
        return found

    # --- update / stats / oom ------------------------------------------------------------

    def update(self, resources: dict) -> None:
        """Merge `resources` into the effective set (like runc update) and apply it.
        Device rules are never changed by update."""
        from pyoci.cgroups import resources as res_mod
        merged = res_mod.merge_json(self.resources, resources)
        parsed = res_mod.from_json(merged)
        if self.dirs:
            self._apply(parsed, devices=False)
        self.resources = merged

    def stats(self) -> dict[str, Any]:
        from pyoci.cgroups import stats as st
        sizes = st.hugepage_sizes()
        data: dict[str, Any] = {}
        unified = self.unified_dir
        if self.mode == "v2" and unified:
            data["cpu"] = st.cpu_v2(unified)
            data["memory"] = st.memory_v2(unified)
            data["pids"] = st.pids_stats(unified, True)
            data["blkio"] = st.blkio_v2(unified)
            data["hugetlb"] = st.hugetlb_v2(unified, sizes)
            return data
        d = self.dirs
        data["cpu"] = st.cpu_v1(d.get("cpu", ""), d.get("cpuacct", ""))
        data["memory"] = st.memory_v1(d["memory"]) if "memory" in d else {}
        data["pids"] = st.pids_stats(d["pids"], False) if "pids" in d else {}
        data["blkio"] = st.blkio_v1(d["blkio"]) if "blkio" in d else {}
        if "hugetlb" in d:
            data["hugetlb"] = st.hugetlb_v1(d["hugetlb"], sizes)
        elif unified:
            data["hugetlb"] = st.hugetlb_v2(unified, sizes)
        else:
            data["hugetlb"] = {}
        return data

    def oom_kill_count(self) -> int:
        """How many processes the OOM killer took in this cgroup so far."""
        d = self.dirs.get("memory")
        try:
            if d is not None:
                text = fs.read(d, "memory.oom_control")
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
                return 0
            if self.unified_dir is not None:
                return _events(self.unified_dir, "memory.events").get("oom_kill", 0)
        except SyscallError:
            return 0
        return 0


def _events(d: str, name: str = "cgroup.events") -> dict[str, int]:
    return fs.read_keyed(d, name)


def _rmtree_cgroup(d: str) -> None:
    """rmdir bottom-up (a container may have made sub-cgroups), retrying while the
    kernel still counts exiting tasks."""
    if not os.path.isdir(d):
        return
    subdirs = [os.path.join(root, name) for root, names, _ in os.walk(d) for name in names]
    for path in reversed(subdirs):
        _rmdir_retry(path)
    _rmdir_retry(d)


def _rmdir_retry(d: str) -> None:
    for attempt in range(_RMDIR_TRIES):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == _RMDIR_TRIES - 1:
                raise SyscallError(f"rmdir {d}", e.errno or 0) from None
            time.sleep(0.005 * (attempt + 1))


def _asks_limits(res: Any) -> bool:
    return any([res.memory, res.cpu, res.pids_limit is not None, res.block_io,
                res.hugepage_limits, res.network, res.unified])


def _asks_limits_json(resources: dict) -> bool:
    return any(k != "devices" and v for k, v in resources.items())


def _only_unified_keys(res: Any) -> Any:
    from pyoci.cgroups.resources import Resources
    return Resources(unified=res.unified)


def _only_unified_parts(res: Any) -> Any:
    from pyoci.cgroups.resources import Resources
    return Resources(hugepage_limits=res.hugepage_limits, unified=res.unified)


def _default_v2_controllers(top: str) -> set[str]:
    """On pure v2 hosts enable the usual controllers (as runc does) so stats work even
    without limits; only those the root offers."""
    try:
        available = set(fs.read(top, "cgroup.controllers").split())
    except SyscallError:
        return set()
    return available & {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"}


def resolve_dirs(layout: Layout, container_id: str, cgroups_path: str | None,
                 own: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Directories of the container's cgroup on every hierarchy, and each mountpoint."""
    from pyoci.cgroups.layout import join_under
    path = cgroups_path or container_id
    if any(part == ".." for part in path.split("/")):
        raise PyociError(f"linux.cgroupsPath: {path!r} must not contain \"..\"")
    dirs: dict[str, str] = {}
    tops: dict[str, str] = {}
    hierarchies = [(k, h) for k, h in layout.v1.items()]
    if layout.unified is not None:
        hierarchies.append((UNIFIED, layout.unified))
    for key, h in hierarchies:
        if path.startswith("/"):
            full = path
        else:
            base = own.get(key, "/")
            full = base.rstrip("/") + "/" + path
        dirs[key] = join_under(h.mountpoint, h.mount_root, full)
        tops[key] = h.mountpoint
    return dirs, tops
