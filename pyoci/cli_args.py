"""argparse for pyoci's command line: every command's full parser, its help and its
usage errors.

The CLI (cli.py) parses the everyday shapes of the global options and of the commands
engines call (create, run, start, state, kill, delete) itself, from the same tables these
parsers are built from: importing argparse and building two parsers would cost each
such call about as much as a light command's own work. Help, an unknown or abbreviated option and a
wrong number of operands come here, so every message is argparse's.
"""

from __future__ import annotations

import argparse
import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from .cli import CommandSyntax

from .errors import UsageError


class _Formatter(argparse.HelpFormatter):
    """argparse asks shutil for the terminal's width each time add_argument checks an
    argument: importing shutil alone costs every pyoci call ~3 ms. $COLUMNS or 80."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "80")) - 2
        except ValueError:
            width = 78
        super().__init__(prog, width=width)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a PyociError like any other (exit 1, one line)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("pyoci").strip()  # the CLI adds "pyoci: " itself
        raise UsageError(f"{command}: {message}" if command else message)


def command_parser(command: str, description: str) -> Parser:
    return Parser(prog=f"pyoci {command}", description=description)


def global_parser(options: tuple, commands: list[str]) -> Parser:
    """`options`: cli.GLOBAL_OPTIONS."""
    p = Parser(prog="pyoci", description="an OCI container runtime",
               epilog="commands: " + ", ".join(commands))
    for names, dest, takes_value, default, choices, help_text in options:
        if takes_value:
            p.add_argument(*names, dest=dest, default=default, choices=choices,
                           help=help_text or argparse.SUPPRESS)
        else:
            p.add_argument(*names, dest=dest, action="store_true",
                           help=help_text or argparse.SUPPRESS)
    p.add_argument("command", nargs="?")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return p


def syntax_parser(command: CommandSyntax) -> Parser:
    p = command_parser(command.name, command.description)
    for names, dest, help_text in command.switches:
        p.add_argument(*names, dest=dest, action="store_true", help=help_text)
    for names, dest, default, convert, help_text in command.values:
        p.add_argument(*names, dest=dest, default=default, type=convert, help=help_text)
    for dest, metavar in command.operands:
        p.add_argument(dest, metavar=metavar)
    for dest, metavar, default in command.optional:
        p.add_argument(dest, metavar=metavar, nargs="?", default=default)
    return p
