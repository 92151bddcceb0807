"""config.md root and mounts; config-linux.md default filesystems, propagation, masked and
readonly paths. Mount checks read /proc/self/mountinfo inside the container."""

from __future__ import annotations

from conformance.context import Context
from conformance.outcome import CheckFailed, expect, expect_equal
from conformance.registry import case

MOUNTINFO = "cat /proc/self/mountinfo"


def mount_entry(mountinfo: str, target: str) -> tuple[set[str], set[str], str, set[str]] | None:
    """(per-mount options, optional fields, fs type, super options) of the top mount at target."""
    found = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 6 or fields[4] != target:
            continue
        rest = right.split()
        found = (set(fields[5].split(",")), set(fields[6:]), rest[0] if rest else "",
                 set(rest[2].split(",")) if len(rest) > 2 else set())
    return found


def require_entry(mountinfo: str, target: str) -> tuple[set[str], set[str], str, set[str]]:
    entry = mount_entry(mountinfo, target)
    if entry is None:
        raise CheckFailed(f"nothing is mounted at {target} inside the container")
    return entry


@case("root.path-relative", "root.path relative to the bundle",
      "config.md#Root",
      "A relative root.path is taken relative to the bundle directory.")
def root_relative(ctx: Context) -> None:
    bundle = ctx.bundle("cat /conf-root-marker")
    (bundle.rootfs / "conf-root-marker").write_text("relative-root\n")
    expect_equal(ctx.run(bundle).strip(), "relative-root", "marker read inside the container")


@case("root.path-absolute", "root.path as an absolute path",
      "config.md#Root",
      "An absolute root.path names the root filesystem directly.")
def root_absolute(ctx: Context) -> None:
    bundle = ctx.bundle("cat /conf-root-marker")
    other = bundle.path / "elsewhere"
    bundle.rootfs.rename(other)
    (other / "conf-root-marker").write_text("absolute-root\n")
    bundle.config["root"] = {"path": str(other)}
    expect_equal(ctx.run(bundle).strip(), "absolute-root", "marker read inside the container")


@case("root.path-missing", "root.path that does not exist fails",
      "config.md#Root",
      "root.path must name an existing directory; create errors otherwise.")
def root_missing(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.config["root"] = {"path": "no-such-rootfs"}
    expect(not ctx.try_create(bundle).ok, "create succeeded with a missing root directory")


@case("root.readonly", "root.readonly makes / read-only",
      "config.md#Root",
      "With readonly true the container cannot write to its root filesystem.")
def root_readonly(ctx: Context) -> None:
    bundle = ctx.bundle(f"touch /conf-written 2>/dev/null && echo wrote || echo refused; {MOUNTINFO}")
    bundle.config["root"] = {"path": "rootfs", "readonly": True}
    output = ctx.run(bundle)
    expect_equal(output.splitlines()[0], "refused", "write to /")
    options, _, _, _ = require_entry(output, "/")
    expect("ro" in options, f"/ is mounted with {sorted(options)}")


@case("root.readonly-false", "root.readonly false keeps / writable",
      "config.md#Root",
      "Without readonly the root filesystem is writable (readonly defaults to false).")
def root_writable(ctx: Context) -> None:
    bundle = ctx.bundle("touch /conf-written && echo wrote")
    del bundle.config["root"]["readonly"]  # type: ignore[attr-defined]
    expect_equal(ctx.run(bundle).strip(), "wrote", "write to /")
    expect((bundle.rootfs / "conf-written").exists(), "the file written in / is not in the rootfs")


@case("mounts.order", "mounts are made in the listed order",
      "config.md#Mounts",
      "Mount entries are applied in order: a later mount covers an earlier one, nested ones need their parent.")
def mounts_order(ctx: Context) -> None:
    first, second = ctx.workdir / "first", ctx.workdir / "second"
    for directory in (first, second):
        directory.mkdir()
        (directory / "who").write_text(directory.name + "\n")
    bundle = ctx.bundle("cat /conf-order/who; cat /conf-nest/inner/who")
    bundle.mounts.extend([
        {"destination": "/conf-order", "type": "bind", "source": str(first), "options": ["bind"]},
        {"destination": "/conf-order", "type": "bind", "source": str(second), "options": ["bind"]},
        {"destination": "/conf-nest", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/conf-nest/inner", "type": "bind", "source": str(first), "options": ["bind"]},
    ])
    expect_equal(ctx.run(bundle).split(), ["second", "first"], "files seen through the stacked and nested mounts")


@case("mounts.bind", "bind mount of a host directory",
      "config.md#Mounts",
      "A mount with the bind option makes the source directory visible at the destination.")
def mounts_bind(ctx: Context) -> None:
    source = ctx.workdir / "bind-source"
    source.mkdir()
    (source / "data").write_text("from-host\n")
    bundle = ctx.bundle("cat /conf-bind/data; echo back > /conf-bind/reply")
    bundle.mounts.append({"destination": "/conf-bind", "type": "bind", "source": str(source),
                          "options": ["bind", "rw"]})
    expect_equal(ctx.run(bundle).strip(), "from-host", "file read through the bind mount")
    expect_equal((source / "reply").read_text(), "back\n", "file written through the bind mount")


@case("mounts.bind-relative-source", "bind source relative to the bundle",
      "config.md#Mounts",
      "A relative bind source is resolved against the bundle directory.")
def mounts_bind_relative(ctx: Context) -> None:
    bundle = ctx.bundle("cat /conf-bind/data")
    (bundle.path / "relative-data").mkdir()
    (bundle.path / "relative-data" / "data").write_text("relative\n")
    bundle.mounts.append({"destination": "/conf-bind", "type": "bind", "source": "relative-data",
                          "options": ["bind"]})
    expect_equal(ctx.run(bundle).strip(), "relative", "file read through the bind mount")


@case("mounts.bind-file", "bind mount of a single file",
      "config.md#Mounts",
      "A bind source may be a regular file; it appears at the destination path.")
def mounts_bind_file(ctx: Context) -> None:
    source = ctx.workdir / "one-file"
    source.write_text("single-file\n")
    bundle = ctx.bundle("cat /etc/conf-file")
    bundle.mounts.append({"destination": "/etc/conf-file", "type": "bind", "source": str(source),
                          "options": ["bind", "ro"]})
    expect_equal(ctx.run(bundle).strip(), "single-file", "file content")


@case("mounts.relative-destination", "relative destination is taken from /",
      "config.md#Mounts",
      "A destination without a leading slash is interpreted relative to the container's /.")
def mounts_relative_destination(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.mounts.append({"destination": "conf-reldest", "type": "tmpfs", "source": "tmpfs"})
    _, _, fstype, _ = require_entry(ctx.run(bundle), "/conf-reldest")
    expect_equal(fstype, "tmpfs", "type of the mount at /conf-reldest")


@case("mounts.tmpfs-data", "tmpfs mount with filesystem data options",
      "config.md#Mounts / #Linux mount options",
      "A tmpfs entry is mounted with its type, and options mount(8) does not know go to the filesystem.")
def mounts_tmpfs(ctx: Context) -> None:
    bundle = ctx.bundle(f"{MOUNTINFO}; stat -c 'mode=%a' /conf-tmp")
    bundle.mounts.append({"destination": "/conf-tmp", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=2m", "mode=710"]})
    output = ctx.run(bundle)
    _, _, fstype, super_options = require_entry(output, "/conf-tmp")
    expect_equal(fstype, "tmpfs", "type")
    expect("size=2048k" in super_options, f"tmpfs options are {sorted(super_options)}")
    expect("mode=710" in output.split(), f"mode of /conf-tmp: {output.split()[-1]}")


def _options_case(ctx: Context, options: list[str], wanted: set[str], unwanted: frozenset[str] | set[str] = frozenset()) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.mounts.append({"destination": "/conf-opt", "type": "tmpfs", "source": "tmpfs", "options": options})
    seen, _, _, _ = require_entry(ctx.run(bundle), "/conf-opt")
    missing = wanted - seen
    extra = unwanted & seen
    expect(not missing and not extra,
           f"options {options} gave mount flags {sorted(seen)}; missing {sorted(missing)}, unexpected {sorted(extra)}")


@case("mounts.option-ro", "mount option ro",
      "config.md#Linux mount options",
      "The ro option mounts the filesystem read-only.")
def option_ro(ctx: Context) -> None:
    _options_case(ctx, ["ro"], {"ro"})


@case("mounts.option-rw", "mount option rw",
      "config.md#Linux mount options",
      "The rw option mounts the filesystem writable, also after an earlier ro.")
def option_rw(ctx: Context) -> None:
    _options_case(ctx, ["ro", "rw"], {"rw"}, {"ro"})


@case("mounts.option-nosuid-nodev-noexec", "mount options nosuid, nodev, noexec",
      "config.md#Linux mount options",
      "nosuid, nodev and noexec set the matching mount flags.")
def option_nosuid(ctx: Context) -> None:
    _options_case(ctx, ["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"})


@case("mounts.option-suid-dev-exec", "mount options suid, dev, exec",
      "config.md#Linux mount options",
      "suid, dev and exec clear flags set by earlier options in the same entry.")
def option_suid(ctx: Context) -> None:
    _options_case(ctx, ["nosuid", "nodev", "noexec", "suid", "dev", "exec"], set(), {"nosuid", "nodev", "noexec"})


@case("mounts.option-atime", "mount options noatime, nodiratime, strictatime, relatime",
      "config.md#Linux mount options",
      "The access-time options set the matching mount flags.")
def option_atime(ctx: Context) -> None:
    _options_case(ctx, ["noatime", "nodiratime"], {"noatime", "nodiratime"})
    _options_case(ctx, ["relatime"], {"relatime"}, {"noatime"})
    _options_case(ctx, ["strictatime"], set(), {"relatime", "noatime"})


@case("mounts.option-sync", "mount options sync and dirsync",
      "config.md#Linux mount options",
      "sync and dirsync set synchronous writes (shown in the mount's options).")
def option_sync(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.mounts.append({"destination": "/conf-opt", "type": "tmpfs", "source": "tmpfs",
                          "options": ["sync", "dirsync"]})
    seen, _, _, super_options = require_entry(ctx.run(bundle), "/conf-opt")
    allflags = seen | super_options
    expect({"sync", "dirsync"} <= allflags, f"flags seen: {sorted(allflags)}")


@case("mounts.option-bind-ro", "read-only bind mount",
      "config.md#Linux mount options",
      "bind together with ro gives a read-only view of the source.")
def option_bind_ro(ctx: Context) -> None:
    source = ctx.workdir / "ro-source"
    source.mkdir()
    bundle = ctx.bundle(f"touch /conf-ro/x 2>/dev/null && echo wrote || echo refused; {MOUNTINFO}")
    bundle.mounts.append({"destination": "/conf-ro", "type": "bind", "source": str(source),
                          "options": ["bind", "ro"]})
    output = ctx.run(bundle)
    expect_equal(output.splitlines()[0], "refused", "write through the ro bind")
    options, _, _, _ = require_entry(output, "/conf-ro")
    expect("ro" in options, f"flags {sorted(options)}")


@case("mounts.option-rbind", "rbind copies submounts, bind does not",
      "config.md#Linux mount options",
      "rbind makes a recursive bind mount that includes mounts below the source; bind alone does not.")
def option_rbind(ctx: Context) -> None:
    source = ctx.workdir / "tree"
    (source / "sub").mkdir(parents=True)
    ctx.host_mount("-t", "tmpfs", "-o", "size=1m", "conf-sub", str(source / "sub"))
    (source / "sub" / "inside").write_text("submount\n")
    bundle = ctx.bundle("cat /conf-r/sub/inside 2>/dev/null || echo absent; "
                        "cat /conf-b/sub/inside 2>/dev/null || echo absent")
    bundle.mounts.extend([
        {"destination": "/conf-r", "type": "bind", "source": str(source), "options": ["rbind"]},
        {"destination": "/conf-b", "type": "bind", "source": str(source), "options": ["bind"]},
    ])
    expect_equal(ctx.run(bundle).split(), ["submount", "absent"], "submount seen through (rbind, bind)")


@case("mounts.option-propagation", "mount propagation options",
      "config.md#Linux mount options",
      "private, shared, slave and unbindable set the propagation type of the mount.")
def option_propagation(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    wanted = {"/conf-shared": "shared", "/conf-private": "private", "/conf-unbindable": "unbindable"}
    for target, option in wanted.items():
        bundle.mounts.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": [option]})
    output = ctx.run(bundle)
    problems = []
    for target, option in wanted.items():
        _, fields, _, _ = require_entry(output, target)
        kinds = {f.split(":")[0] for f in fields}
        if option == "private" and kinds & {"shared", "master", "unbindable"}:
            problems.append(f"{target}: {sorted(fields)}")
        elif option != "private" and option not in kinds:
            problems.append(f"{target}: wanted {option}, optional fields {sorted(fields)}")
    expect(not problems, "; ".join(problems))


@case("mounts.option-recursive-ro", "recursive read-only (rro)",
      "config.md#Linux mount options",
      "rro makes a bind mount and every mount below it read-only (a SHOULD).")
def option_rro(ctx: Context) -> None:
    source = ctx.workdir / "tree"
    (source / "sub").mkdir(parents=True)
    ctx.host_mount("-t", "tmpfs", "-o", "size=1m", "conf-sub", str(source / "sub"))
    bundle = ctx.bundle("touch /conf-rro/sub/x 2>/dev/null && echo wrote || echo refused")
    bundle.mounts.append({"destination": "/conf-rro", "type": "bind", "source": str(source),
                          "options": ["rbind", "rro"]})
    expect_equal(ctx.run(bundle).strip(), "refused", "write to a submount of an rro bind")


@case("defaults.filesystems", "default filesystems are present",
      "config-linux.md#Default Filesystems",
      "/proc, /sys, /dev/pts and /dev/shm are available with types proc, sysfs, devpts and tmpfs.")
def default_filesystems(ctx: Context) -> None:
    output = ctx.run(ctx.bundle(MOUNTINFO))
    wanted = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}
    problems = []
    for target, fstype in wanted.items():
        entry = mount_entry(output, target)
        if entry is None or entry[2] != fstype:
            problems.append(f"{target}: {entry[2] if entry else 'not mounted'}")
    expect(not problems, "; ".join(problems))


@case("rootfs-propagation.private", "rootfsPropagation private",
      "config-linux.md#Rootfs Mount Propagation",
      "With private the container's root mount is in no peer group and has no master.")
def rootfs_private(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.linux["rootfsPropagation"] = "private"
    _, fields, _, _ = require_entry(ctx.run(bundle), "/")
    expect(not fields, f"root mount optional fields {sorted(fields)}")


@case("rootfs-propagation.shared", "rootfsPropagation shared",
      "config-linux.md#Rootfs Mount Propagation",
      "With shared the container's root mount belongs to a peer group.")
def rootfs_shared(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.linux["rootfsPropagation"] = "shared"
    _, fields, _, _ = require_entry(ctx.run(bundle), "/")
    expect(any(f.startswith("shared:") for f in fields), f"root mount optional fields {sorted(fields)}")


@case("rootfs-propagation.slave", "rootfsPropagation slave",
      "config-linux.md#Rootfs Mount Propagation",
      "With slave the root mount receives events from the host: a host mount under the rootfs appears inside.")
def rootfs_slave(ctx: Context) -> None:
    bundle = ctx.bundle("while [ ! -e /conf-go ]; do sleep 0.02; done; "
                        "cat /mnt/marker 2>/dev/null || echo absent; " + MOUNTINFO)
    bundle.linux["rootfsPropagation"] = "slave"
    # A shared host mount of the bundle gives the container's root a master to follow.
    ctx.host_mount("--bind", str(bundle.path), str(bundle.path))
    ctx.host_mount("--make-shared", str(bundle.path))
    late = ctx.workdir / "late"
    late.mkdir()
    (late / "marker").write_text("propagated\n")
    ctx.create(bundle)
    ctx.start(bundle.cid)
    ctx.host_mount("--bind", str(late), str(bundle.rootfs / "mnt"))
    (bundle.rootfs / "conf-go").write_text("")
    ctx.wait_status(bundle.cid, "stopped")
    output = ctx.output(bundle)
    _, fields, _, _ = require_entry(output, "/")
    seen = output.splitlines()[0]
    expect(any(f.startswith("master:") for f in fields) and seen == "propagated",
           f"root mount optional fields {sorted(fields)}; host mount made after start seen inside: {seen}")


@case("rootfs-propagation.unbindable", "rootfsPropagation unbindable",
      "config-linux.md#Rootfs Mount Propagation",
      "With unbindable the container's root mount cannot be bind-mounted.")
def rootfs_unbindable(ctx: Context) -> None:
    bundle = ctx.bundle(MOUNTINFO)
    bundle.linux["rootfsPropagation"] = "unbindable"
    _, fields, _, _ = require_entry(ctx.run(bundle), "/")
    expect("unbindable" in fields, f"root mount optional fields {sorted(fields)}")


@case("masked-paths", "maskedPaths hide files and directories",
      "config-linux.md#Masked Paths",
      "A masked file reads as empty and a masked directory shows no entries.")
def masked_paths(ctx: Context) -> None:
    bundle = ctx.bundle("echo file=$(cat /conf-secret.txt); echo dir=$(ls /conf-secret-dir)")
    (bundle.rootfs / "conf-secret.txt").write_text("secret\n")
    (bundle.rootfs / "conf-secret-dir").mkdir()
    (bundle.rootfs / "conf-secret-dir" / "inner").write_text("secret\n")
    bundle.linux["maskedPaths"] = ["/conf-secret.txt", "/conf-secret-dir", "/conf-not-there"]
    expect_equal(ctx.run(bundle).split(), ["file=", "dir="], "masked contents")


@case("readonly-paths", "readonlyPaths are read-only",
      "config-linux.md#Readonly Paths",
      "A path listed in readonlyPaths cannot be written, while the rest of the rootfs can.")
def readonly_paths(ctx: Context) -> None:
    bundle = ctx.bundle("touch /conf-ro-dir/x 2>/dev/null && echo wrote || echo refused; "
                        "touch /conf-rw-dir/x && echo wrote")
    (bundle.rootfs / "conf-ro-dir").mkdir()
    (bundle.rootfs / "conf-rw-dir").mkdir()
    bundle.linux["readonlyPaths"] = ["/conf-ro-dir"]
    expect_equal(ctx.run(bundle).split(), ["refused", "wrote"], "writes to (readonly path, other dir)")
