"""argparse for pyoci's command line: every command's full parser, its help and its
usage errors.

The global options and the commands engines call are read without argparse
(cli_syntax.py); their parsers here are built from the same descriptions, for help and
for anything that reading did not fully understand, so every message is argparse's.
"""

from __future__ import annotations

import argparse
import os
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .cli_syntax import CommandSyntax, Option

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


def global_parser(options: Sequence[Option], commands: list[str]) -> Parser:
    """`options`: cli.GLOBAL_OPTIONS."""
    p = Parser(prog="pyoci", description="an OCI container runtime",
               epilog="commands: " + ", ".join(commands))
    for option in options:
        option.add_to(p)
    p.add_argument("command", nargs="?")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return p


def syntax_parser(command: CommandSyntax) -> Parser:
    p = command_parser(command.name, command.description)
    for option in command.options:
        option.add_to(p)
    for dest, metavar in command.operands:
        p.add_argument(dest, metavar=metavar)
    for dest, metavar, default in command.optional:
        p.add_argument(dest, metavar=metavar, nargs="?", default=default)
    return p
