"""Signal names and numbers, as `kill` accepts them: 9, KILL, SIGKILL."""

from __future__ import annotations

import signal

from .errors import UsageError


def parse_signal(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise UsageError(f"invalid signal: {text}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for prefix, base, direction in (("SIGRTMIN+", signal.SIGRTMIN, 1), ("SIGRTMAX-", signal.SIGRTMAX, -1)):
        offset = name.removeprefix(prefix)
        if offset != name and offset.isdigit():
            number = base + direction * int(offset)
            if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                return number
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise UsageError(f'unknown signal "{text}"')
    return int(sig)
