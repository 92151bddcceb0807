#!/usr/bin/python3
"""A runc wrapper that breaks one thing, chosen by CONFORMANCE_BROKEN:

  drop-hostname   create ignores config.json's hostname
  extra-env       create adds a variable to the process environment
  never-stopped   state reports "running" for a container that has stopped

Everything else goes to runc (CONFORMANCE_REAL_RUNTIME, default runc) unchanged.
"""

from __future__ import annotations

import json
import os
import sys

GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """(command, its arguments) after the global options."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in GLOBAL_WITH_VALUE:
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            return arg, argv[index + 1:]
    return None, []


def bundle_of(args: list[str]) -> str:
    for index, arg in enumerate(args):
        if arg in ("--bundle", "-b") and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--bundle="):
            return arg.split("=", 1)[1]
    return os.getcwd()


def rewrite_config(bundle: str, breakage: str) -> None:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return  # let the real runtime report the problem
    if breakage == "drop-hostname":
        config.pop("hostname", None)
    elif breakage == "extra-env" and isinstance(config.get("process"), dict):
        config["process"].setdefault("env", []).append("BROKEN_RUNTIME_LEAK=1")
    with open(path, "w") as handle:
        json.dump(config, handle)


def main() -> None:
    real = os.environ.get("CONFORMANCE_REAL_RUNTIME", "runc")
    breakage = os.environ.get("CONFORMANCE_BROKEN", "")
    argv = sys.argv[1:]
    command, args = split_command(argv)
    if command in ("create", "run") and breakage in ("drop-hostname", "extra-env"):
        rewrite_config(bundle_of(args), breakage)
    if command == "state" and breakage == "never-stopped":
        import subprocess
        result = subprocess.run([real, *argv], capture_output=True, text=True)
        if result.returncode == 0:
            state = json.loads(result.stdout)
            if state.get("status") == "stopped":
                state["status"] = "running"
            sys.stdout.write(json.dumps(state))
        sys.stderr.write(result.stderr)
        sys.exit(result.returncode)
    os.execvp(real, [real, *argv])


if __name__ == "__main__":
    main()
