"""pyoci's command line, shaped like runc's: `pyoci [global options] COMMAND [options] ID`.

Global options come before the command. They, and the commands engines call, are
described here and read by cli_syntax.py without argparse (which cli_args.py brings in
only for help and for mistakes), and only the chosen command's modules are imported:
start-up is most of what a runtime call costs. Every PyociError becomes one line on stderr (and an entry in --log) and exit 1.
"""

from __future__ import annotations

import json
import os
import sys
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from types import SimpleNamespace

from . import OCI_VERSION, __version__
from .cli_syntax import CommandSyntax, Switch, Value, read_options
from .context import Context
from .errors import PyociError, UsageError
from .log import Log


def command_parser(command: str, description: str):  # -> cli_args.Parser
    from .cli_args import command_parser as make
    return make(command, description)


_BUNDLE_OPTIONS = (
    Value(("--bundle", "-b"), "bundle", ".", "path to the bundle directory"),
    Value(("--console-socket",), "console_socket", None, "unix socket that receives the pty master"),
    Value(("--pid-file",), "pid_file", None, "file to write the container's pid to"),
    Switch(("--no-pivot",), "no_pivot", "use chroot-like switch instead of pivot_root"),
    Switch(("--no-new-keyring",), "no_new_keyring", "keep the caller's session keyring"),
    Value(("--preserve-fds",), "preserve_fds", 0, "pass N extra fds from 3 on", convert=int),
)
CREATE = CommandSyntax("create", "create a container", _BUNDLE_OPTIONS)
RUN = CommandSyntax("run", "create and start a container", _BUNDLE_OPTIONS + (
    Switch(("--detach", "-d"), "detach", "do not wait for the container"),
    Switch(("--keep",), "keep", "do not delete the container after it exits"),
    Switch(("--no-subreaper", "-no-subreaper"), "no_subreaper", "do not become a subreaper"),
))


# --- commands -------------------------------------------------------------------------

def cmd_create(ctx: Context, argv: list[str]) -> int:
    a = CREATE.parse(argv)
    from .lifecycle import create
    from .options import CreateOptions
    created = create(ctx, a.container_id, CreateOptions(
        bundle=a.bundle, pid_file=a.pid_file, console_socket=a.console_socket,
        preserve_fds=a.preserve_fds, no_pivot=a.no_pivot, no_new_keyring=a.no_new_keyring))
    created.cdir.close()
    return 0


def cmd_run(ctx: Context, argv: list[str]) -> int:
    a = RUN.parse(argv)
    from .lifecycle import run
    from .options import RunOptions
    return run(ctx, a.container_id, RunOptions(
        bundle=a.bundle, pid_file=a.pid_file, console_socket=a.console_socket,
        preserve_fds=a.preserve_fds, no_pivot=a.no_pivot, no_new_keyring=a.no_new_keyring,
        detach=a.detach, keep=a.keep, no_subreaper=a.no_subreaper))


START = CommandSyntax("start", "start the program of a created container")
STATE = CommandSyntax("state", "print the state of a container as JSON")
KILL = CommandSyntax("kill", "send a signal to the container's init (default SIGTERM)",
                     (Switch(("--all", "-a"), "all", "signal every process of the container"),),
                     optional=(("signal", "SIGNAL", "SIGTERM"),))
DELETE = CommandSyntax("delete", "delete a container and everything it holds",
                       (Switch(("--force", "-f"), "force", "kill the container if it is running"),))


def cmd_start(ctx: Context, argv: list[str]) -> int:
    a = START.parse(argv)
    from .lifecycle import start
    start(ctx, a.container_id)
    return 0


def cmd_state(ctx: Context, argv: list[str]) -> int:
    a = STATE.parse(argv)
    from .lifecycle import container_state
    print(json.dumps(container_state(ctx, a.container_id), indent=2))
    return 0


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    a = KILL.parse(argv)
    from .lifecycle import kill
    from .signals import parse_signal
    sig = parse_signal(a.signal)
    kill(ctx, a.container_id, sig, a.all)
    return 0


def cmd_delete(ctx: Context, argv: list[str]) -> int:
    a = DELETE.parse(argv)
    from .lifecycle import delete
    delete(ctx, a.container_id, a.force)
    return 0


def cmd_list(ctx: Context, argv: list[str]) -> int:
    p = command_parser("list", "list the containers of this root")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the ids")
    a = p.parse_args(argv)
    from .lifecycle import list_states
    states = list_states(ctx)
    if a.quiet:
        for s in states:
            print(s["id"])
    elif a.format == "json":
        print(json.dumps(states) if states else "null")
    else:
        print(format_table(states))
    return 0


def format_table(states: list[dict]) -> str:
    """Columns as runc's tabwriter pads them: at least 12 wide, 3 spaces apart."""
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s.get("created", ""),
              s.get("owner", "")] for s in states]
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "\n".join("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] for r in rows)


def cmd_spec(ctx: Context, argv: list[str]) -> int:
    p = command_parser("spec", "write a default config.json")
    p.add_argument("--bundle", "-b", default=".", help="directory to write config.json in")
    p.add_argument("--rootless", action="store_true", help="a config for an unprivileged user")
    a = p.parse_args(argv)
    from .specgen import default_config
    path = os.path.join(a.bundle, "config.json")
    if os.path.exists(path):
        raise PyociError(f"File {path} exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_config(a.rootless), f, indent=2)
        f.write("\n")
    return 0


def cmd_validate(ctx: Context, argv: list[str]) -> int:
    p = command_parser("validate", "check a bundle's config.json and report every problem")
    p.add_argument("--bundle", "-b", default=".")
    a = p.parse_args(argv)
    from .validate import validate_bundle
    problems = validate_bundle(a.bundle)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(f"{os.path.join(a.bundle, 'config.json')}: valid")
    return 0


def _cgroup_command(name: str) -> Callable[[Context, list[str]], int]:
    """update/pause/resume/events/ps live in cgroup_commands, imported only when used."""
    def run(ctx: Context, argv: list[str]) -> int:
        from . import cgroup_commands
        return int(getattr(cgroup_commands, f"cmd_{name}")(ctx, argv))
    return run


def cmd_exec(ctx: Context, argv: list[str]) -> int:
    from .exec import cmd_exec as run_exec
    return run_exec(ctx, argv)


def cmd_features(ctx: Context, argv: list[str]) -> int:
    from .features import cmd_features as run_features
    return run_features(ctx, argv)


COMMANDS: dict[str, tuple[Callable[[Context, list[str]], int], str]] = {
    "create": (cmd_create, "create a container"),
    "start": (cmd_start, "start a created container"),
    "state": (cmd_state, "print a container's state"),
    "kill": (cmd_kill, "signal a container"),
    "delete": (cmd_delete, "delete a container"),
    "run": (cmd_run, "create and start a container"),
    "list": (cmd_list, "list containers"),
    "spec": (cmd_spec, "write a default config.json"),
    "validate": (cmd_validate, "check a bundle's config.json"),
    "update": (_cgroup_command("update"), "change a container's resource limits"),
    "pause": (_cgroup_command("pause"), "freeze every process of a container"),
    "resume": (_cgroup_command("resume"), "thaw a paused container"),
    "events": (_cgroup_command("events"), "print a container's stats and OOM events"),
    "ps": (_cgroup_command("ps"), "list the processes of a container"),
    "exec": (cmd_exec, "run a process in a running container"),
    "features": (cmd_features, "print what this runtime supports, as JSON"),
}


# --- the global part --------------------------------------------------------------------

GLOBAL_OPTIONS = (
    Value(("--root",), "root", None,
          "state directory (default /run/pyoci, rootless $XDG_RUNTIME_DIR/pyoci)"),
    Value(("--log",), "log", None, "file to append log entries to"),
    Value(("--log-format",), "log_format", "text", "text or json", choices=("text", "json")),
    Switch(("--debug",), "debug", "log every step"),
    Switch(("--systemd-cgroup",), "systemd_cgroup", "manage cgroups through systemd"),
    Value(("--rootless",), "rootless", "auto", "true, false or auto"),
    Value(("--criu",), "criu", None, None),  # runc's; accepted and unused
    Switch(("--version", "-v"), "version", "print the version"),
)


def parse_globals(argv: list[str]):  # -> SimpleNamespace | argparse.Namespace
    """The global options up to the command; the command and its argv."""
    from types import SimpleNamespace
    read = read_options(argv, GLOBAL_OPTIONS, stop_at_operand=True)
    if read is None:
        return _argparse_globals(argv)
    values, rest = read
    return SimpleNamespace(**values, command=rest[0] if rest else None, args=rest[1:])


def _argparse_globals(argv: list[str]):  # -> argparse.Namespace
    from .cli_args import global_parser
    return global_parser(GLOBAL_OPTIONS, list(COMMANDS)).parse_args(argv)


def _rootless(value: str) -> bool:
    from .rootless import is_rootless
    return is_rootless(value)


def _default_root(rootless: bool) -> str:
    from .rootless import default_root
    return default_root(rootless)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log = Log()
    try:
        g = parse_globals(argv)
        log = Log(g.log, g.log_format, g.debug)
        if g.version:
            print(f"pyoci version {__version__}\ncommit: {__version__}\nspec: {OCI_VERSION}")
            return 0
        if not g.command:
            from .cli_args import global_parser
            global_parser(GLOBAL_OPTIONS, list(COMMANDS)).print_help()
            return 0
        if g.command not in COMMANDS:
            raise UsageError(f"unknown command {g.command!r}; commands: {', '.join(COMMANDS)}")
        rootless = _rootless(g.rootless)
        ctx = Context(root=os.path.abspath(g.root or _default_root(rootless)), log=log,
                      systemd_cgroup=g.systemd_cgroup, rootless=rootless)
        return COMMANDS[g.command][0](ctx, g.args)
    except PyociError as err:
        _report(log, str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001
        # A bug, but still one line in --log: containerd reports the last JSON error
        # entry, and a traceback instead hides the cause ("unable to retrieve OCI
        # runtime error"). Where it happened is kept for the bug report.
        import traceback
        frame = traceback.extract_tb(err.__traceback__)[-1]
        _report(log, f"internal error: {type(err).__name__}: {err} "
                     f"(at {os.path.basename(frame.filename)}:{frame.lineno})")
        return 1


def _report(log: Log, message: str) -> None:
    line = " ".join(message.split("\n"))
    log.error(line)
    if log.json and not log.path:
        return  # the JSON line already went to stderr
    print(f"pyoci: {line}", file=sys.stderr)


def entry() -> None:
    """The `pyoci` executable. It leaves with os._exit: tearing down the interpreter's
    modules is pure cost for a command that is run several times per container."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
