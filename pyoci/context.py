"""What every operation needs to know about this invocation: the global options."""

from __future__ import annotations

from dataclasses import dataclass

from .log import Log


@dataclass
class Context:
    root: str
    log: Log
    systemd_cgroup: bool = False
    rootless: bool = False
