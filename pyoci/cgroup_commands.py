"""The commands that act on a container's cgroup: update, pause, resume, events, ps.

Shaped like runc's: the same flags, output and error phrases engines match on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from .cli import command_parser
from .context import Context
from .errors import ConfigError, PyociError, UsageError, WrongState


def _open(ctx: Context, container_id: str, exclusive: bool):
    from .lifecycle import cgroup_of, current_status
    from .state import StateRoot
    cdir = StateRoot(ctx.root).open(container_id, exclusive=exclusive)
    state = cdir.load()
    status = current_status(cdir, state)
    cgroup = cgroup_of(state) if state is not None else None
    return cdir, state, status, cgroup


def _need_cgroup(cgroup: Any, container_id: str):
    if cgroup is None or not cgroup.dirs:
        raise PyociError(f"container {container_id} has no cgroup (created without one)")
    return cgroup


# --- pause / resume ---------------------------------------------------------------------

def cmd_pause(ctx: Context, argv: list[str]) -> int:
    p = command_parser("pause", "freeze every process of the container")
    p.add_argument("container_id", metavar="ID")
    a = p.parse_args(argv)
    cdir, _state, status, cgroup = _open(ctx, a.container_id, exclusive=True)
    try:
        if status not in ("created", "running"):
            raise WrongState("container not running")
        _need_cgroup(cgroup, a.container_id).freeze()
    finally:
        cdir.close()
    return 0


def cmd_resume(ctx: Context, argv: list[str]) -> int:
    p = command_parser("resume", "thaw a paused container")
    p.add_argument("container_id", metavar="ID")
    a = p.parse_args(argv)
    cdir, _state, status, cgroup = _open(ctx, a.container_id, exclusive=True)
    try:
        if status != "paused":
            raise WrongState("container not paused")
        _need_cgroup(cgroup, a.container_id).thaw()
    finally:
        cdir.close()
    return 0


# --- update -----------------------------------------------------------------------------

_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)


def parse_bytes(text: str, flag: str) -> int:
    """A size like runc accepts: 1024, 512k, 64m, 1g (binary multiples), or -1."""
    if text.strip() == "-1":
        return -1
    m = _BYTES.match(text.strip())
    if not m:
        raise UsageError(f"{flag}: invalid size {text!r}")
    scale = 1024 ** " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * scale)


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag}: invalid number {text!r}") from None


# flag -> (section, key, parser)
_UPDATE_FLAGS: dict[str, tuple[str, str, str]] = {
    "memory": ("memory", "limit", "bytes"),
    "memory_reservation": ("memory", "reservation", "bytes"),
    "memory_swap": ("memory", "swap", "bytes"),
    "kernel_memory": ("memory", "kernel", "bytes"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "bytes"),
    "cpu_shares": ("cpu", "shares", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu_idle": ("cpu", "idle", "int"),
    "cpu_burst": ("cpu", "burst", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "pids_limit": ("pids", "limit", "int"),
    "blkio_weight": ("blockIO", "weight", "int"),
}


def cmd_update(ctx: Context, argv: list[str]) -> int:
    p = command_parser("update", "change the resource limits of a container")
    p.add_argument("--resources", "-r", help="linux.resources JSON file, - for stdin")
    for name in _UPDATE_FLAGS:
        flag = "--" + name.replace("_", "-")
        aliases = [flag, "--cpu-share"] if name == "cpu_shares" else [flag]
        p.add_argument(*aliases, dest=name, metavar="VALUE")
    p.add_argument("container_id", metavar="ID")
    a = p.parse_args(argv)

    update: dict[str, Any] = {}
    if a.resources:
        try:
            text = sys.stdin.read() if a.resources == "-" else open(a.resources).read()
            update = json.loads(text)
        except OSError as e:
            raise PyociError(f"update: read {a.resources}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"update: {a.resources}: not JSON ({e})") from None
        if not isinstance(update, dict):
            raise ConfigError(f"update: {a.resources}: must hold a JSON object")
    for name, (section, key, kind) in _UPDATE_FLAGS.items():
        raw = getattr(a, name)
        if raw is None:
            continue
        flag = "--" + name.replace("_", "-")
        value: Any = (parse_bytes(raw, flag) if kind == "bytes" else
                      _int(raw, flag) if kind == "int" else raw)
        update.setdefault(section, {})[key] = value

    cdir, state, status, cgroup = _open(ctx, a.container_id, exclusive=True)
    try:
        if state is None or status in ("stopped", "creating"):
            raise WrongState("container not running")
        cgroup = _need_cgroup(cgroup, a.container_id)
        if not cgroup.resources:
            # Older state records: start from what config.json asked for.
            linux = (state.config or {}).get("linux") or {}
            cgroup.resources = dict(linux.get("resources") or {})
        cgroup.update(update)
        state.cgroup = cgroup.to_state()
        if isinstance(state.config, dict):
            state.config.setdefault("linux", {})["resources"] = cgroup.resources
        cdir.save(state)
    finally:
        cdir.close()
    return 0


# --- events ------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "1m30s", "250ms") in seconds."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text or total <= 0:
        raise UsageError(f"--interval: invalid duration {text!r} (e.g. 5s, 500ms)")
    return total


def _emit(kind: str, container_id: str, data: Any = None) -> None:
    event: dict[str, Any] = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def cmd_events(ctx: Context, argv: list[str]) -> int:
    p = command_parser("events", "print stats and OOM events as JSON lines")
    p.add_argument("--interval", default="5s", help="time between stats events")
    p.add_argument("--stats", action="store_true", help="print stats once and exit")
    p.add_argument("container_id", metavar="ID")
    a = p.parse_args(argv)
    interval = parse_duration(a.interval)
    cdir, state, status, cgroup = _open(ctx, a.container_id, exclusive=False)
    cdir.close()
    if status in ("stopped", "creating"):
        raise WrongState("container not running")
    cgroup = _need_cgroup(cgroup, a.container_id)
    if a.stats:
        _emit("stats", a.container_id, cgroup.stats())
        return 0
    from .state import init_alive
    assert state is not None
    ooms = cgroup.oom_kill_count()
    next_stats = time.monotonic()
    while init_alive(state):
        now = time.monotonic()
        count = cgroup.oom_kill_count()
        if count > ooms:
            ooms = count
            _emit("oom", a.container_id)
        if now >= next_stats:
            try:
                _emit("stats", a.container_id, cgroup.stats())
            except PyociError:
                break  # the cgroup went away with the container
            next_stats = now + interval
        time.sleep(min(0.1, interval))
    # One last look: the OOM kill may be what ended the container.
    if cgroup.oom_kill_count() > ooms:
        _emit("oom", a.container_id)
    return 0


# --- ps ------------------------------------------------------------------------------------

def _split_ps_args(argv: list[str]) -> tuple[str, str, list[str]]:
    """Options end at the first positional (the id); everything after goes to ps."""
    fmt, i = "table", 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        arg = argv[i]
        if arg in ("--format", "-f"):
            if i + 1 >= len(argv):
                raise UsageError("pyoci ps: --format needs a value")
            fmt, i = argv[i + 1], i + 2
        elif arg.startswith("--format="):
            fmt, i = arg.split("=", 1)[1], i + 1
        elif arg in ("-h", "--help"):
            raise UsageError("usage: pyoci ps [--format table|json] ID [ps options]")
        else:
            raise UsageError(f"pyoci ps: unknown option {arg}")
    if i < len(argv) and argv[i] == "--":
        i += 1
    if i >= len(argv):
        raise UsageError("pyoci ps: container id required")
    rest = argv[i + 1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    if fmt not in ("table", "json"):
        raise UsageError(f"pyoci ps: invalid format {fmt!r} (table or json)")
    return fmt, argv[i], rest


def filter_ps_table(output: str, pids: list[int]) -> str:
    lines = output.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise PyociError("ps: could not find a PID column in ps output")
    column = header.index("PID")
    wanted = set(pids)
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            kept.append(line)
    return "\n".join(kept) + "\n"


def cmd_ps(ctx: Context, argv: list[str]) -> int:
    fmt, container_id, ps_args = _split_ps_args(argv)
    cdir, _state, status, cgroup = _open(ctx, container_id, exclusive=False)
    cdir.close()
    if status in ("stopped", "creating"):
        raise WrongState("container not running")
    pids = _need_cgroup(cgroup, container_id).pids()
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                             check=True).stdout
    except FileNotFoundError:
        raise PyociError("ps: the ps program is not installed") from None
    except subprocess.CalledProcessError as e:
        raise PyociError(f"ps {' '.join(ps_args or ['-ef'])}: {e.stderr.strip()}") from None
    sys.stdout.write(filter_ps_table(out, pids))
    return 0
