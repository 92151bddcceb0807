"""What /proc says about a process: enough to tell a live container from a recycled pid."""

from __future__ import annotations


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(b")") + 2:].decode().split()


def start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot (field 22 of stat)."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int, expected_start: int) -> bool:
    """True if `pid` is the same process that had `expected_start` and it is not a zombie."""
    fields = stat_fields(pid)
    if fields is None:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == expected_start
