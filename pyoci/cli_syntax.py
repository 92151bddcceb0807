"""The shape of a command line, and the reading of its everyday forms without argparse.

Importing argparse (with gettext and locale) and building its parsers costs each pyoci
call about as much as a light command's own work, and engines call pyoci several times
per container. So the global options and the commands engines call are described here
(Switch, Value, CommandSyntax) and read by `read_options`; whatever it does not fully
understand (help, an unknown or abbreviated option, a value that does not convert, a
wrong number of operands) goes to an argparse parser built from the same description
(cli_args), so every message is argparse's.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from types import SimpleNamespace

class Switch:
    """An option without a value: given or not."""

    def __init__(self, names: tuple[str, ...], dest: str, help: str | None) -> None:
        self.names = names
        self.dest = dest
        self.default: object = False
        self.help = help  # None: accepted, not shown

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        import argparse  # already loaded: only argparse's path builds parsers
        parser.add_argument(*self.names, dest=self.dest, action="store_true",
                            help=self.help or argparse.SUPPRESS)


class Value:
    """An option with one value: `--name VALUE` or `--name=VALUE`."""

    def __init__(self, names: tuple[str, ...], dest: str, default: object, help: str | None,
                 convert: Callable[[str], object] = str,
                 choices: tuple[str, ...] | None = None) -> None:
        self.names = names
        self.dest = dest
        self.default = default
        self.help = help  # None: accepted, not shown
        self.convert = convert
        self.choices = choices

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        import argparse
        parser.add_argument(*self.names, dest=self.dest, default=self.default, type=self.convert,
                            choices=self.choices, help=self.help or argparse.SUPPRESS)


Option = Switch | Value


def read_options(argv: list[str], options: Sequence[Option], stop_at_operand: bool
                 ) -> tuple[dict[str, object], list[str]] | None:
    """The options' values and the operands; with `stop_at_operand`, the operands are
    everything from the first one on (a command and its own argv). None when argparse
    must judge."""
    by_name = {name: option for option in options for name in option.names}
    values = {option.dest: option.default for option in options}
    operands: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            if stop_at_operand:
                return values, argv[i:]
            operands.append(arg)
        elif arg == "--" and not stop_at_operand:
            return values, operands + argv[i + 1:]
        else:
            name, eq, text = arg.partition("=")
            option = by_name.get(name)
            if option is None or (eq and isinstance(option, Switch)):
                return None
            if isinstance(option, Switch):
                values[option.dest] = True
            else:
                if not eq:
                    i += 1
                    if i == len(argv):
                        return None
                    text = argv[i]
                try:
                    value = option.convert(text)
                except ValueError:
                    return None
                if option.choices is not None and value not in option.choices:
                    return None
                values[option.dest] = value
        i += 1
    return values, operands


class CommandSyntax:
    """A command's options and operands: the ID, and optional ones after it."""

    def __init__(self, name: str, description: str, options: Sequence[Option] = (),
                 operands: Sequence[tuple[str, str]] = (("container_id", "ID"),),
                 optional: Sequence[tuple[str, str, str]] = ()) -> None:
        self.name = name
        self.description = description
        self.options = options
        self.operands = operands  # (dest, metavar)
        self.optional = optional  # (dest, metavar, default)

    def parse(self, argv: list[str]) -> SimpleNamespace | argparse.Namespace:
        from types import SimpleNamespace
        read = read_options(argv, self.options, stop_at_operand=False)
        required = len(self.operands)
        if read is None or not required <= len(read[1]) <= required + len(self.optional):
            from .cli_args import syntax_parser
            return syntax_parser(self).parse_args(argv)
        values, given = read
        for (dest, _), value in zip(self.operands, given):
            values[dest] = value
        for i, (dest, _, default) in enumerate(self.optional):
            values[dest] = given[required + i] if required + i < len(given) else default
        return SimpleNamespace(**values)
