"""config.md process, user, hostname/domainname; runtime-linux.md file descriptors."""

from __future__ import annotations

import os

from conformance.console import ConsoleSocket, read_until
from conformance.context import Context
from conformance.outcome import CheckFailed, expect, expect_equal
from conformance.registry import case

CAP_BITS = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
            "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_AUDIT_WRITE": 29}


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cap_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_BITS[name]
    return mask


@case("process.args", "args are passed exactly",
      "config.md#Process",
      "The program receives process.args as its argument vector, spaces and all.")
def args(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.process["args"] = ["sh", "-c", 'printf "[%s]" "$0" "$@"', "zero", "one two", "", "three"]
    expect_equal(ctx.run(bundle), "[zero][one two][][three]", "argument vector seen by the program")


@case("process.args-path-lookup", "args[0] is looked up in PATH",
      "config.md#Process",
      "A program name without a slash is found through the PATH of process.env, like execvp.")
def args_path_lookup(ctx: Context) -> None:
    bundle = ctx.bundle()
    (bundle.rootfs / "opt" / "conf").mkdir(parents=True)
    ctx.write_executable(bundle.rootfs / "opt" / "conf" / "conf-hello", "#!/bin/sh\necho found-in-path\n")
    bundle.process["env"] = ["PATH=/opt/conf:/bin"]
    bundle.process["args"] = ["conf-hello"]
    expect_equal(ctx.run(bundle).strip(), "found-in-path", "program output")


@case("process.env", "env is the program's environment",
      "config.md#Process",
      "The program's environment holds exactly the process.env entries (HOME may be added).")
def env(ctx: Context) -> None:
    wanted = ["PATH=/usr/bin:/bin", "CONF_A=alpha", "CONF_B=two words=and equals", "CONF_EMPTY="]
    bundle = ctx.bundle()
    bundle.process["env"] = wanted
    bundle.process["args"] = ["env"]
    seen = ctx.run(bundle).splitlines()
    missing = [entry for entry in wanted if entry not in seen]
    extra = [entry for entry in seen if entry not in wanted and not entry.startswith("HOME=")]
    expect(not missing and not extra, f"missing {missing}, unexpected {extra}")


@case("process.cwd", "cwd is the working directory",
      "config.md#Process",
      "The program starts in process.cwd.")
def cwd(ctx: Context) -> None:
    bundle = ctx.bundle("pwd")
    (bundle.rootfs / "conf-work").mkdir()
    bundle.process["cwd"] = "/conf-work"
    expect_equal(ctx.run(bundle).strip(), "/conf-work", "working directory")


@case("process.cwd-relative-fails", "relative cwd is refused",
      "config.md#Process / #Valid values",
      "cwd must be absolute; a relative one is an invalid value and create errors.")
def cwd_relative(ctx: Context) -> None:
    bundle = ctx.bundle("pwd")
    bundle.process["cwd"] = "tmp"
    result = ctx.try_create(bundle)
    expect(not result.ok, "create accepted a relative cwd")


@case("process.user", "uid, gid and additionalGids",
      "config.md#POSIX-platform User",
      "The program runs with user.uid, user.gid and exactly user.additionalGids as supplementary groups.")
def user(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/status")
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2001, 2002]}
    fields = status_fields(ctx.run(bundle))
    expect_equal(fields.get("Uid", "").split(), ["1000"] * 4, "Uid (real, effective, saved, fs)")
    expect_equal(fields.get("Gid", "").split(), ["1001"] * 4, "Gid (real, effective, saved, fs)")
    expect_equal(sorted(fields.get("Groups", "").split()), ["2001", "2002"], "supplementary groups")


@case("process.umask", "user.umask",
      "config.md#POSIX-platform User",
      "The program starts with the umask given in user.umask.")
def umask(ctx: Context) -> None:
    bundle = ctx.bundle("umask")
    bundle.process["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    expect_equal(ctx.run(bundle).strip(), "0027", "umask")


@case("process.capabilities", "capability sets of a root process",
      "config.md#Linux Process",
      "The process keeps the configured bounding, effective, permitted and inheritable capabilities only.")
def capabilities(ctx: Context) -> None:
    chosen = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"]
    bundle = ctx.bundle("cat /proc/self/status")
    bundle.process["capabilities"] = {"bounding": chosen, "effective": chosen, "permitted": chosen,
                                      "inheritable": ["CAP_KILL"]}
    fields = status_fields(ctx.run(bundle))
    wanted = {"CapBnd": cap_mask(chosen), "CapEff": cap_mask(chosen), "CapPrm": cap_mask(chosen),
              "CapInh": cap_mask(["CAP_KILL"]), "CapAmb": 0}
    seen = {key: int(fields.get(key, "-1"), 16) for key in wanted}
    expect(seen == wanted, "sets differ: " + ", ".join(
        f"{key} {seen[key]:#x} (wanted {wanted[key]:#x})" for key in wanted if seen[key] != wanted[key]))


@case("process.capabilities-ambient", "ambient capabilities of a non-root process",
      "config.md#Linux Process",
      "A non-root process with an ambient capability has it effective after exec.")
def capabilities_ambient(ctx: Context) -> None:
    chosen = ["CAP_NET_BIND_SERVICE"]
    bundle = ctx.bundle("cat /proc/self/status")
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {key: chosen for key in
                                      ("bounding", "effective", "permitted", "inheritable", "ambient")}
    fields = status_fields(ctx.run(bundle))
    mask = cap_mask(chosen)
    seen = {key: int(fields.get(key, "-1"), 16) for key in ("CapAmb", "CapEff", "CapBnd")}
    expect(all(value == mask for value in seen.values()),
           ", ".join(f"{k} {v:#x}" for k, v in seen.items()) + f" (wanted {mask:#x})")


@case("process.capabilities-unknown", "an unknown capability does not fail the container",
      "config.md#Linux Process",
      "A capability name the runtime cannot map is a warning; the container should still run.")
def capabilities_unknown(ctx: Context) -> None:
    bundle = ctx.bundle("echo ran")
    caps = ["CAP_KILL", "CAP_CONFORMANCE_NO_SUCH_CAP"]
    bundle.process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    expect_equal(ctx.run(bundle).strip(), "ran", "program output")


@case("process.rlimits", "rlimits set soft and hard limits",
      "config.md#POSIX-platform process",
      "Each rlimit entry sets the soft and hard limit of its resource for the program.")
def rlimits(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/limits")
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_NPROC", "soft": 777, "hard": 888},
    ]
    wanted = {"Max open files": ["321", "654"], "Max core file size": ["4096", "8192"],
              "Max processes": ["777", "888"]}
    output = ctx.run(bundle)
    problems = []
    for label, values in wanted.items():
        line = next((l for l in output.splitlines() if l.startswith(label)), "")
        seen = line[len(label):].split()[:2]
        if seen != values:
            problems.append(f"{label}: {seen} (wanted {values})")
    expect(not problems, "; ".join(problems))


@case("process.rlimits-invalid-type", "unknown rlimit type is refused",
      "config.md#POSIX-platform process",
      "An rlimit type that maps to no kernel resource makes create error.")
def rlimits_invalid(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.process["rlimits"] = [{"type": "RLIMIT_CONFORMANCE_BOGUS", "soft": 1, "hard": 1}]
    expect(not ctx.try_create(bundle).ok, "create accepted an unknown rlimit type")


@case("process.rlimits-duplicate", "duplicate rlimit type is refused",
      "config.md#POSIX-platform process",
      "Two rlimit entries of the same type make create error.")
def rlimits_duplicate(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                                 {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]
    expect(not ctx.try_create(bundle).ok, "create accepted a duplicated rlimit type")


@case("process.no-new-privileges", "noNewPrivileges true",
      "config.md#Linux Process",
      "With noNewPrivileges the program runs with the no_new_privs bit set.")
def no_new_privileges(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/status")
    bundle.process["noNewPrivileges"] = True
    expect_equal(status_fields(ctx.run(bundle)).get("NoNewPrivs"), "1", "NoNewPrivs")


@case("process.no-new-privileges-unset", "noNewPrivileges false",
      "config.md#Linux Process",
      "Without noNewPrivileges the no_new_privs bit stays clear.")
def no_new_privileges_unset(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/status")
    bundle.process["noNewPrivileges"] = False
    expect_equal(status_fields(ctx.run(bundle)).get("NoNewPrivs"), "0", "NoNewPrivs")


@case("process.oom-score-adj", "oomScoreAdj is applied",
      "config.md#Linux Process",
      "When oomScoreAdj is set, the program's oom_score_adj has that value.")
def oom_score_adj(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/oom_score_adj")
    bundle.process["oomScoreAdj"] = 432
    expect_equal(ctx.run(bundle).strip(), "432", "oom_score_adj")


@case("process.oom-score-adj-unset", "oom_score_adj untouched when not set",
      "config.md#Linux Process",
      "Without oomScoreAdj the program inherits the runtime caller's oom_score_adj unchanged.")
def oom_score_adj_unset(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/self/oom_score_adj")
    bundle.process.pop("oomScoreAdj", None)
    own = "/proc/self/oom_score_adj"
    with open(own) as handle:
        saved = handle.read().strip()
    try:
        with open(own, "w") as handle:
            handle.write("123")
        output = ctx.run(bundle)
    finally:
        with open(own, "w") as handle:
            handle.write(saved)
    expect_equal(output.strip(), "123", "oom_score_adj (the caller had 123)")


@case("process.terminal", "terminal true gives the program a pty",
      "config.md#Process / config-linux.md#Default Devices",
      "With terminal the program's stdio is a pseudoterminal, /dev/console is that pty, "
      "and the size follows consoleSize.")
def terminal(ctx: Context) -> None:
    bundle = ctx.bundle("test -t 0 && test -t 1 && echo stdio-is-tty; "
                        "echo \"size=$(stty size)\"; echo \"tty=$(stat -L -c %t:%T $(tty))\"; "
                        "echo \"console=$(stat -c %t:%T /dev/console)\"; echo conf-done")
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 33, "width": 101}
    listener = ConsoleSocket(ctx.workdir / "console.sock")
    master = -1
    try:
        result = ctx.try_create(bundle, extra=("--console-socket", str(listener.path)))
        if not result.ok:
            raise CheckFailed(f"create with --console-socket failed: {result.describe()}")
        try:
            master = listener.receive_master()
        except (TimeoutError, OSError, ValueError) as error:
            raise CheckFailed(f"no pty master arrived on the console socket: {error}") from None
        ctx.start(bundle.cid)
        output = read_until(master, b"conf-done").decode(errors="replace").replace("\r", "")
    finally:
        listener.close()
        if master >= 0:
            os.close(master)
    lines = output.splitlines()
    expect("stdio-is-tty" in lines, f"stdio is not a terminal; output {output!r}")
    expect("size=33 101" in lines, f"console size not applied; output {output!r}")
    tty = next((l[4:] for l in lines if l.startswith("tty=")), "?")
    console = next((l[8:] for l in lines if l.startswith("console=")), "?")
    expect(tty == console and tty != "?", f"/dev/console is {console}, the program's tty is {tty}")


@case("process.console-size-ignored", "consoleSize without terminal is ignored",
      "config.md#Process",
      "consoleSize is ignored when terminal is false: the container runs normally.")
def console_size_ignored(ctx: Context) -> None:
    bundle = ctx.bundle("test -t 1 && echo tty || echo no-tty")
    bundle.process["terminal"] = False
    bundle.process["consoleSize"] = {"height": 10, "width": 10}
    expect_equal(ctx.run(bundle).strip(), "no-tty", "program output")


@case("hostname", "hostname is set",
      "config.md#Hostname",
      "The container sees the configured hostname in its UTS namespace.")
def hostname(ctx: Context) -> None:
    bundle = ctx.bundle("hostname")
    bundle.config["hostname"] = "conf-host-name"
    expect_equal(ctx.run(bundle).strip(), "conf-host-name", "hostname")
    expect(os.uname().nodename != "conf-host-name", "the host's hostname changed")


@case("domainname", "domainname is set",
      "config.md#Domainname",
      "The container sees the configured NIS domain name in its UTS namespace.")
def domainname(ctx: Context) -> None:
    bundle = ctx.bundle("cat /proc/sys/kernel/domainname")
    bundle.config["domainname"] = "conf.example.test"
    expect_equal(ctx.run(bundle).strip(), "conf.example.test", "domainname")


@case("fds.only-stdio", "only stdio is open in the program",
      "runtime-linux.md#File descriptors",
      "By default the program starts with descriptors 0, 1 and 2 and no others.")
def only_stdio(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.process["args"] = ["ls", "/proc/self/fd"]
    seen = sorted(int(n) for n in ctx.run(bundle).split())
    # ls itself holds one descriptor open on /proc/self/fd while listing.
    expect(seen[:3] == [0, 1, 2] and len(seen) == 4, f"open descriptors {seen} (one is ls's own)")


@case("extensibility.unknown-properties", "unknown config properties are ignored",
      "config.md#Extensibility / #Annotations",
      "Unknown properties and unknown annotation keys do not stop the container.")
def unknown_properties(ctx: Context) -> None:
    bundle = ctx.bundle("echo ran")
    bundle.config["org.example.conformance.unknown"] = {"nested": [1, 2]}
    bundle.process["conformanceUnknownField"] = True
    bundle.config["annotations"] = {"org.example.conformance.unknown-key": "value"}
    expect_equal(ctx.run(bundle).strip(), "ran", "program output")


@case("config.oci-version-invalid", "ociVersion that is not SemVer is refused",
      "config.md#Specification version / #Valid values",
      "ociVersion must be SemVer; an invalid value makes create error.")
def oci_version_invalid(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.config["ociVersion"] = "not-a-version"
    expect(not ctx.try_create(bundle).ok, "create accepted ociVersion 'not-a-version'")
