"""config-linux.md devices, default devices and the device allow list; runtime-linux.md
/dev symbolic links."""

from __future__ import annotations

from conformance.context import Context
from conformance.outcome import expect, expect_equal
from conformance.registry import case

DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                   "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}
STAT = "stat -L -c '%n|%F|%t|%T|%a|%u|%g'"
# An unregistered character device: opening it fails with ENXIO unless a cgroup rule refuses
# first with EPERM, which tells the two apart without any driver.
UNREGISTERED = (240, 0)


def parse_stat(output: str) -> dict[str, list[str]]:
    seen = {}
    for line in output.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            name, kind, major, minor, mode, uid, gid = parts
            seen[name] = [kind, str(int(major, 16)), str(int(minor, 16)), mode, uid, gid]
    return seen


@case("devices.defaults", "default devices are supplied",
      "config-linux.md#Default Devices",
      "/dev/null, zero, full, random, urandom and tty exist as the right character devices.")
def defaults(ctx: Context) -> None:
    bundle = ctx.bundle(f"{STAT} {' '.join(DEFAULT_DEVICES)}")
    seen = parse_stat(ctx.run(bundle))
    problems = []
    for path, (major, minor) in DEFAULT_DEVICES.items():
        entry = seen.get(path)
        if entry is None:
            problems.append(f"{path} missing")
        elif entry[:3] != ["character special file", str(major), str(minor)]:
            problems.append(f"{path} is {entry[:3]}")
    expect(not problems, "; ".join(problems))


@case("devices.defaults-usable", "default devices behave as their kind",
      "config-linux.md#Default Devices",
      "The default devices work: null swallows, zero gives zeros, full refuses writes, urandom gives data.")
def defaults_usable(ctx: Context) -> None:
    script = ("echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; "
              "(echo x > /dev/full) 2>/dev/null && echo full-accepted || echo full-refused; "
              "head -c 16 /dev/urandom | wc -c")
    lines = [" ".join(line.split()) for line in ctx.run(ctx.bundle(script)).splitlines()]
    expect_equal(lines, ["null-ok", "00 00 00 00", "full-refused", "16"], "device behaviour")


@case("devices.ptmx", "/dev/ptmx is supplied",
      "config-linux.md#Default Devices",
      "/dev/ptmx exists, as a bind mount or symlink of the container's /dev/pts/ptmx.")
def ptmx(ctx: Context) -> None:
    bundle = ctx.bundle(f"readlink /dev/ptmx; {STAT} /dev/ptmx /dev/pts/ptmx")
    output = ctx.run(bundle)
    seen = parse_stat(output)
    link = output.splitlines()[0] if output and "|" not in output.splitlines()[0] else ""
    ok = link in ("pts/ptmx", "/dev/pts/ptmx") or (
        "/dev/ptmx" in seen and seen["/dev/ptmx"][:3] == ["character special file", "5", "2"])
    expect(ok, f"/dev/ptmx: link {link!r}, stat {seen.get('/dev/ptmx')}")


@case("devices.dev-symlinks", "/dev/fd, stdin, stdout, stderr links",
      "runtime-linux.md#Dev symbolic links",
      "/dev/fd, /dev/stdin, /dev/stdout and /dev/stderr link to /proc/self/fd, fd/0, fd/1 and fd/2.")
def dev_symlinks(ctx: Context) -> None:
    bundle = ctx.bundle("for l in fd stdin stdout stderr; do echo \"$l=$(readlink /dev/$l)\"; done")
    wanted = ["fd=/proc/self/fd", "stdin=/proc/self/fd/0", "stdout=/proc/self/fd/1", "stderr=/proc/self/fd/2"]
    expect_equal(ctx.run(bundle).split(), wanted, "links")


@case("devices.config-char", "a configured character device",
      "config-linux.md#Devices",
      "A devices entry appears at its path with its type, numbers, fileMode, uid and gid.")
def config_char(ctx: Context) -> None:
    bundle = ctx.bundle(f"{STAT} /dev/conf-null; echo x > /dev/conf-null && echo usable")
    bundle.linux["devices"] = [{"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o666, "uid": 1234, "gid": 4321}]
    output = ctx.run(bundle)
    expect_equal(parse_stat(output).get("/dev/conf-null"),
                 ["character special file", "1", "3", "666", "1234", "4321"], "(type, major, minor, mode, uid, gid)")
    expect("usable" in output.split(), "writing to the device failed")


@case("devices.config-block-fifo", "configured block device and fifo",
      "config-linux.md#Devices",
      "Entries of type b and p appear as a block device and a fifo.")
def config_block_fifo(ctx: Context) -> None:
    bundle = ctx.bundle(f"{STAT} /dev/conf-loop /dev/conf-fifo")
    bundle.linux["devices"] = [{"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
                               {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o600}]
    seen = parse_stat(ctx.run(bundle))
    expect_equal((seen.get("/dev/conf-loop", ["?"] * 3)[:3], seen.get("/dev/conf-fifo", ["?"])[0]),
                 (["block special file", "7", "0"], "fifo"), "(loop device, fifo)")


@case("devices.config-outside-dev", "a device outside /dev",
      "config-linux.md#Devices",
      "A device path may be anywhere in the container filesystem.")
def config_outside_dev(ctx: Context) -> None:
    bundle = ctx.bundle(f"{STAT} /conf-devs/null")
    bundle.linux["devices"] = [{"path": "/conf-devs/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    entry = parse_stat(ctx.run(bundle)).get("/conf-devs/null", ["missing"])
    expect_equal(entry[:3], ["character special file", "1", "3"], "/conf-devs/null")


@case("devices.config-conflict", "a device over a different existing file is refused",
      "config-linux.md#Devices",
      "create errors when a file that is not the requested device already exists at the device path.")
def config_conflict(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    (bundle.rootfs / "conf-existing").write_text("a regular file\n")
    bundle.linux["devices"] = [{"path": "/conf-existing", "type": "c", "major": 1, "minor": 3}]
    expect(not ctx.try_create(bundle).ok, "create replaced or ignored a regular file at the device path")


def _allow_list_case(ctx: Context, last_allows: bool) -> str:
    major, minor = UNREGISTERED
    bundle = ctx.bundle(f"mknod /tmp/conf-dev c {major} {minor} && cat /tmp/conf-dev 2>&1; true")
    caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
    bundle.process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    rule = {"type": "c", "major": major, "minor": minor, "access": "rw"}
    first, second = ({**rule, "allow": False}, {**rule, "allow": True}) if last_allows else \
        ({**rule, "allow": True}, {**rule, "allow": False})
    bundle.linux["resources"] = {"devices": [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "c", "access": "m"}, first, second]}
    return ctx.run(bundle)


@case("devices.allow-list-order", "device cgroup rules apply in order",
      "config-linux.md#Allowed Device list",
      "Device rules are applied in the listed order: the last matching rule decides access.")
def allow_list_order(ctx: Context) -> None:
    denied = _allow_list_case(ctx, last_allows=False)
    allowed = _allow_list_case(ctx, last_allows=True)
    expect("Operation not permitted" in denied, f"allow-then-deny: open gave {denied.strip()!r}, wanted EPERM")
    expect("Operation not permitted" not in allowed and allowed.strip(),
           f"deny-then-allow: open gave {allowed.strip()!r}, wanted a driver error such as ENXIO")
