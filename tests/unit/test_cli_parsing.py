"""The CLI's own parsing of everyday argv agrees with argparse built from the same tables,
and everything else reaches argparse, for its messages."""

from __future__ import annotations

import pytest

from pyoci import cli
from pyoci.cli_args import global_parser, syntax_parser
from pyoci.errors import UsageError


def _argparse_globals(argv: list[str]) -> dict:
    return vars(global_parser(cli.GLOBAL_OPTIONS, list(cli.COMMANDS)).parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["start", "c1"],
    ["--root", "/run/x", "--log", "/tmp/l.json", "--log-format", "json", "delete", "--force", "c1"],
    ["--root=/run/x", "--log-format=text", "--debug", "--systemd-cgroup", "kill", "c1", "KILL"],
    ["--rootless", "false", "--criu", "criu", "state", "c1"],
    ["--version"],
    ["-v"],
    [],
    ["create", "--bundle", "/b", "--root", "/not/a/global/here", "c1"],
])
def test_globals_as_argparse_reads_them(argv: list[str]) -> None:
    assert vars(cli.parse_globals(argv)) == _argparse_globals(argv)


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "start", "c1"], "unrecognized arguments: --bogus"),
    (["--log-format", "yaml", "state", "c1"], "invalid choice: 'yaml'"),
    (["--root"], "expected one argument"),
    (["--debug=yes", "state", "c1"], "ignored explicit argument 'yes'"),
])
def test_unusual_globals_get_argparse_messages(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cli.parse_globals(argv)


@pytest.mark.parametrize("command, argv", [
    (cli.START, ["c1"]),
    (cli.STATE, ["c1"]),
    (cli.DELETE, ["c1"]),
    (cli.DELETE, ["--force", "c1"]),
    (cli.DELETE, ["c1", "-f"]),
    (cli.KILL, ["c1"]),
    (cli.KILL, ["c1", "9"]),
    (cli.KILL, ["--all", "c1", "SIGKILL"]),
    (cli.KILL, ["-a", "--", "c1", "TERM"]),
    (cli.DELETE, ["--forc", "c1"]),  # abbreviated: argparse's rule, through argparse
    (cli.CREATE, ["c1"]),
    (cli.CREATE, ["--bundle", "/b", "--pid-file=/p", "--console-socket", "/s", "c1"]),
    (cli.CREATE, ["-b", "/b", "c1", "--no-pivot", "--no-new-keyring", "--preserve-fds", "2"]),
    (cli.CREATE, ["-b/b", "c1"]),  # an attached short value: through argparse
    (cli.RUN, ["-d", "--keep", "--no-subreaper", "--bundle=/b", "c1"]),
    (cli.RUN, ["-no-subreaper", "c1"]),
])
def test_light_commands_as_argparse_reads_them(command: cli.CommandSyntax, argv: list[str]) -> None:
    assert vars(command.parse(argv)) == vars(syntax_parser(command).parse_args(argv))


@pytest.mark.parametrize("command, argv, message", [
    (cli.START, [], "the following arguments are required: ID"),
    (cli.START, ["c1", "c2"], "unrecognized arguments: c2"),
    (cli.KILL, ["c1", "KILL", "more"], "unrecognized arguments: more"),
    (cli.DELETE, ["--force=yes", "c1"], "ignored explicit argument 'yes'"),
    (cli.CREATE, ["--preserve-fds", "two", "c1"], "invalid int value: 'two'"),
    (cli.CREATE, ["c1", "--bundle"], "expected one argument"),
    (cli.CREATE, ["--bogus", "c1"], "unrecognized arguments: --bogus"),
])
def test_light_command_mistakes_get_argparse_messages(command: cli.CommandSyntax, argv: list[str],
                                                      message: str) -> None:
    with pytest.raises(UsageError, match=f"{command.name}: .*{message}"):
        command.parse(argv)


def test_everyday_argv_imports_no_argparse() -> None:
    import subprocess
    import sys
    code = ("import sys; from pyoci import cli; cli.parse_globals(['--root', '/x', 'kill', 'c1']);"
            "cli.KILL.parse(['--all', 'c1', 'KILL']);"
            "cli.CREATE.parse(['--bundle', '/b', '--pid-file', '/p', 'c1']);"
            "print('argparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_help_hides_what_runc_accepts_but_pyoci_does_not_use() -> None:
    text = global_parser(cli.GLOBAL_OPTIONS, list(cli.COMMANDS)).format_help()
    assert "--root" in text and "--criu" not in text
