"""What keeps each pyoci call's start-up short stays true as the code grows."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import subprocess
import sys

import pyoci


def _pyoci_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(pyoci.__path__, "pyoci.")
                  if not m.name.endswith("__main__"))


def test_every_dataclass_has_a_docstring() -> None:
    # Without one, @dataclass writes one with inspect.signature, which costs each class
    # (and the first one a great deal) at every start of every command that defines it.
    missing = []
    for name in _pyoci_modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj)
                    and obj.__module__ == name and (obj.__doc__ or "").startswith(obj.__name__ + "(")):
                missing.append(f"{name}.{obj.__name__}")
    assert missing == []


def test_light_commands_import_neither_dataclasses_nor_argparse() -> None:
    code = ("import sys\n"
            "from pyoci.cli import main\n"
            "for argv in (['state', 'x'], ['start', 'x'], ['kill', 'x', 'KILL'], ['delete', 'x']):\n"
            "    main(['--root', sys.argv[1], *argv])\n"
            "print(sorted(m for m in ('dataclasses', 'argparse', 'ctypes') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, "/nonexistent/pyoci-root"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
