"""Building the container's root filesystem, in the init's new mount namespace.

The walk every build-your-own-container article takes, with the traps closed:
1. stop mount events leaking back to the host (make / rslave or as rootfsPropagation says);
2. bind the rootfs onto itself so it is a mount point pivot_root accepts;
3. every `mounts[]` entry in order, each destination resolved *inside* the rootfs;
4. /dev: default devices, the config's devices, the usual symlinks;
5. pivot_root into the rootfs and detach the old root;
6. after the pivot: masked and read-only paths, a read-only root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from .errors import ConfigError, PyociError, SyscallError
from .linux import mountopts
from .linux import syscalls as sc
from .spec import Device, Mount, Spec

_MAX_SYMLINKS = 255

# config-linux.md "Default Devices": (path, major, minor)
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))


def secure_join(root: str, unsafe: str) -> str:
    """`unsafe` resolved as if `root` were /: symlinks and `..` can never leave root.

    A mount destination that is a symlink to /etc in the image must land on
    <rootfs>/etc, not on the host's /etc.
    """
    parts = [p for p in unsafe.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise PyociError(f"resolve {unsafe} in rootfs: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return os.path.join(root, *resolved)


def _make_mountpoint(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


def _locked_flags(path: str) -> int:
    """Flags a remount must keep: in a user namespace dropping them is EPERM."""
    vfs = os.statvfs(path)
    keep = 0
    for st_flag, ms_flag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV),
                             (os.ST_NOEXEC, sc.MS_NOEXEC), (os.ST_RDONLY, sc.MS_RDONLY),
                             (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_NODIRATIME, sc.MS_NODIRATIME),
                             (os.ST_RELATIME, sc.MS_RELATIME)):
        if vfs.f_flag & st_flag:
            keep |= ms_flag
    return keep


def remount_bind(path: str, flags: int) -> None:
    """Apply per-mount flags to a bind mount (bind ignores them on the first call)."""
    flags |= sc.MS_REMOUNT | sc.MS_BIND
    try:
        sc.mount(None, path, None, flags, step=f"remount {path}")
    except SyscallError as err:
        if err.errno != 1:  # EPERM: a locked flag from the source mount was dropped
            raise
        sc.mount(None, path, None, flags | _locked_flags(path), step=f"remount {path}")


def _cgroup_hierarchies() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of the host's cgroup mounts."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, superopts = fields[sep + 1], fields[sep + 3]
            if fstype in ("cgroup", "cgroup2"):
                found.append((fields[4], fstype, superopts))
    return found


def _own_cgroup_paths() -> dict[str, str]:
    """Controller list (as in /proc/self/cgroup) -> this process's cgroup path."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[controllers] = path
    return paths


def _mount_cgroups(dest: str, flags: int, new_cgroupns: bool) -> None:
    """A `cgroup` mount: a tmpfs holding one entry per host hierarchy, showing only
    the container's own cgroup (a fresh mount inside a cgroup namespace, else a bind
    of the container's directory)."""
    sc.mount("tmpfs", dest, "tmpfs", flags & ~sc.MS_RDONLY, "mode=755",
             step=f"mount cgroup tmpfs on {dest}")
    own = _own_cgroup_paths()
    for mountpoint, fstype, superopts in _cgroup_hierarchies():
        if not mountpoint.startswith("/sys/fs/cgroup/"):
            continue
        name = os.path.basename(mountpoint)
        target = os.path.join(dest, name)
        os.makedirs(target, exist_ok=True)
        if fstype == "cgroup2":
            key = ""
            options = None
        else:
            controllers = [o for o in superopts.split(",") if o not in ("rw", "ro")]
            key = ",".join(controllers)
            options = key
        if new_cgroupns:
            sc.mount(fstype, target, fstype, flags, options, step=f"mount {fstype} on {target}")
            continue
        path = own.get(key)
        if path is None:
            continue
        sc.mount(mountpoint + path, target, None, sc.MS_BIND | sc.MS_REC,
                 step=f"bind cgroup {mountpoint}{path} on {target}")
        remount_bind(target, flags)
    if flags & sc.MS_RDONLY:
        remount_bind(dest, flags)


def mount_entry(m: Mount, rootfs: str, bundle: str, new_cgroupns: bool,
                idmapped_tree: int | None = None) -> None:
    """`idmapped_tree`: a detached idmapped copy of the source, prepared on the host
    side (pyoci.bootstrap), moved into place instead of a plain bind."""
    opts = mountopts.parse(m.options)
    dest = secure_join(rootfs, m.destination)
    fstype = m.type or ""
    is_bind = opts.is_bind or fstype == "bind"
    if idmapped_tree is not None:
        from .linux import idmapped
        _make_mountpoint(dest, stat.S_ISDIR(os.fstat(idmapped_tree).st_mode))
        idmapped.move_into_place(idmapped_tree, dest)
        extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        if extra:
            remount_bind(dest, extra)
    elif is_bind:
        source = m.source or ""
        if not source:
            raise ConfigError(f"mount {m.destination}: a bind mount needs a source")
        source = os.path.join(bundle, source)
        try:
            source_is_dir = stat.S_ISDIR(os.stat(source).st_mode)
        except FileNotFoundError:
            raise PyociError(f"mount {source} on {m.destination}: source does not exist") from None
        _make_mountpoint(dest, source_is_dir)
        sc.mount(source, dest, None, sc.MS_BIND | (opts.flags & sc.MS_REC),
                 step=f"bind {source} on {m.destination}")
        extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        if extra:
            remount_bind(dest, extra)
    elif fstype == "cgroup":
        _make_mountpoint(dest, True)
        _mount_cgroups(dest, opts.flags, new_cgroupns)
    else:
        _make_mountpoint(dest, True)
        sc.mount(m.source or fstype, dest, fstype, opts.flags, opts.data_string,
                 step=f"mount {fstype} on {m.destination}")
    for propagation in opts.propagation:
        sc.mount(None, dest, None, propagation, step=f"set propagation of {m.destination}")
    if opts.attr_set or opts.attr_clear:
        sc.mount_setattr(dest, opts.attr_set, opts.attr_clear, recursive=True)


_DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _is_that_device(st: os.stat_result, dev: Device) -> bool:
    kind = _DEVICE_KINDS.get(dev.type)
    if kind is None or stat.S_IFMT(st.st_mode) != kind:
        return False
    return kind == stat.S_IFIFO or st.st_rdev == os.makedev(dev.major, dev.minor)


def _make_device(rootfs: str, dev: Device, bind_from_host: bool, configured: bool) -> None:
    """`configured`: from linux.devices, where config-linux.md makes an existing file
    that is not this very device an error (a default device simply replaces it)."""
    path = secure_join(rootfs, dev.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        st = os.lstat(path)
        # An empty regular file is a bind-mount point an earlier container left.
        leftover_mountpoint = stat.S_ISREG(st.st_mode) and st.st_size == 0 and bind_from_host
        if configured and not leftover_mountpoint and not _is_that_device(st, dev):
            raise ConfigError(f"linux.devices: {dev.path} exists in the rootfs and is not "
                              f"the {dev.type} {dev.major}:{dev.minor} device asked for")
        os.unlink(path)
    if bind_from_host:
        # mknod is not allowed in a user namespace: show the host's node instead.
        _make_mountpoint(path, False)
        sc.mount(dev.path, path, None, sc.MS_BIND, step=f"bind device {dev.path}")
        return
    kinds = _DEVICE_KINDS
    if dev.type not in kinds:
        raise ConfigError(f"linux.devices: {dev.path}: unknown device type {dev.type!r}")
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    try:
        os.mknod(path, kinds[dev.type] | (mode & 0o7777), os.makedev(dev.major, dev.minor))
        os.chmod(path, mode & 0o7777)  # mknod honours the umask; the config does not
        os.chown(path, dev.uid if dev.uid is not None else 0, dev.gid if dev.gid is not None else 0)
    except OSError as err:
        raise SyscallError(f"create device {dev.path}", err.errno or 0) from None


def setup_dev(spec: Spec, rootfs: str, in_user_ns: bool) -> None:
    configured = {d.path for d in spec.linux.devices}
    for path, major, minor in DEFAULT_DEVICES:
        if path not in configured:
            _make_device(rootfs, Device(type="c", path=path, major=major, minor=minor,
                                        file_mode=0o666, uid=0, gid=0), in_user_ns,
                         configured=False)
    for dev in spec.linux.devices:
        _make_device(rootfs, dev, in_user_ns, configured=True)
    for target, link in DEV_SYMLINKS:
        path = secure_join(rootfs, link)
        if not os.path.lexists(path):
            os.symlink(target, path)
    if os.path.exists("/proc/kcore"):
        core = secure_join(rootfs, "/dev/core")
        if not os.path.lexists(core):
            os.symlink("/proc/kcore", core)
    pts_ptmx = secure_join(rootfs, "/dev/pts/ptmx")
    if os.path.exists(pts_ptmx):
        ptmx = secure_join(rootfs, "/dev/ptmx")
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)


def in_user_ns_view(m: Mount, in_user_ns: bool, new_netns: bool) -> Mount:
    """The mount as runc performs it in a user namespace: sysfs belongs to the network
    namespace, so without a new one it cannot be mounted and the host's /sys is
    bound (recursively) instead."""
    if m.type == "sysfs" and in_user_ns and not new_netns:
        return Mount(destination=m.destination, type="bind", source="/sys",
                     options=["rbind", *m.options])
    return m


def prepare(spec: Spec, rootfs: str, bundle: str, new_cgroupns: bool, in_user_ns: bool,
            new_netns: bool = True, idmapped_mounts: dict[int, int] | None = None,
            trace: Callable[[str], None] | None = None) -> None:
    """Steps 1-4: everything before pivot_root. `idmapped_mounts`: mount index ->
    detached idmapped tree. `trace` (--debug) hears of each mount."""
    idmapped_mounts = idmapped_mounts or {}
    # Never let this namespace's mounts propagate back to the host; the configured
    # rootfsPropagation is applied to the new / once it is the root (finish()). Now no
    # mount is shared, as pivot_root wants of the new root's parent, and a rootfs on a
    # shared host mount still follows it: the bind below is a slave of the same master.
    sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC, step="make / a slave mount")
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, step=f"bind rootfs {rootfs}")
    dev_is_bound = False
    for index, m in enumerate(spec.mounts):
        if trace is not None:
            trace(f"mount {m.type or 'bind'} {m.source or ''} on {m.destination} {','.join(m.options)}")
        mount_entry(in_user_ns_view(m, in_user_ns, new_netns), rootfs, bundle, new_cgroupns,
                    idmapped_mounts.get(index))
        if m.destination.rstrip("/") == "/dev" and (m.type == "bind" or "bind" in m.options
                                                    or "rbind" in m.options):
            dev_is_bound = True
    if not dev_is_bound:
        setup_dev(spec, rootfs, in_user_ns)
        if trace is not None:
            trace("devices and /dev links created")


def move_root(rootfs: str) -> None:
    """Step 5 for --no-pivot (ramfs roots refuse pivot_root): as runc does, detach every
    mount of the host this namespace can drop, move rootfs onto / and chroot into it.
    Weaker than pivot_root: the host's root stays below, reachable by a process with
    CAP_SYS_CHROOT, which is why pivot_root is the default."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            points.append(line.split()[4])
    inside = rootfs.rstrip("/") + "/"
    for point in sorted(set(points), key=len, reverse=True):
        if point == "/" or point == rootfs or point.startswith(inside) or inside.startswith(point.rstrip("/") + "/"):
            continue
        try:
            sc.mount(None, point, None, sc.MS_PRIVATE | sc.MS_REC, step=f"make {point} private")
            sc.umount2(point, sc.MNT_DETACH)
        except SyscallError:
            continue  # already gone with a parent, or locked: it stays hidden under /
    os.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE, step="move the rootfs onto / (--no-pivot)")
    os.chroot(".")
    os.chdir("/")


def pivot(rootfs: str) -> None:
    """Step 5: make rootfs the new / and drop every trace of the old one."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new_root)
        # pivot_root(".", ".") stacks the old root on top of the new one: no
        # directory for it is needed inside the image.
        sc.pivot_root(".", ".")
        os.fchdir(old_root)
        # Slave first, so detaching the old root is not propagated to the host.
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, step="make old root a slave")
        sc.umount2(".", sc.MNT_DETACH)
        os.fchdir(new_root)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def finish(spec: Spec) -> None:
    """Step 6, inside the new root."""
    for path in spec.linux.readonly_paths:
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, step=f"bind read-only path {path}")
            remount_bind(path, sc.MS_RDONLY | sc.MS_REC)
    for path in spec.linux.masked_paths:
        if not os.path.lexists(path):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0k",
                     step=f"mask {path}")
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND, step=f"mask {path}")
    if spec.root.readonly:
        remount_bind("/", sc.MS_RDONLY)
    propagation = spec.linux.rootfs_propagation
    if propagation:
        if propagation not in mountopts.PROPAGATION:
            raise ConfigError(f"linux.rootfsPropagation: unknown value {propagation!r}")
        sc.mount(None, "/", None, mountopts.PROPAGATION[propagation],
                 step=f"make / {propagation}")
