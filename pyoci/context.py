"""What every operation needs to know about this invocation: the global options."""

from __future__ import annotations

from .log import Log


class Context:
    # A plain class: every command builds one, and `state`, `start`, `kill` and
    # `delete` should not pay for importing dataclasses (and inspect) to do so.
    def __init__(self, root: str, log: Log, systemd_cgroup: bool = False,
                 rootless: bool = False) -> None:
        self.root = root
        self.log = log
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
