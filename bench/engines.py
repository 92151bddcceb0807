"""How much slower is a container through an engine with pyoci than with runc?

Times `podman run --rm IMAGE true` and `ctr run --rm IMAGE ID true`, with pyoci and
with runc taking turns (so drift in the machine's load hits both alike), and prints
the medians and the pyoci/runc ratio as a table. The engines are set up as for the
integration tests (tests/integration/install-engines.sh first), in a temp dir that
is removed afterwards.

A third runtime, "python+runc", is the floor any runtime written in Python stands on:
a script that starts this interpreter, imports json, and execs runc. Its ratio is what
interpreter start-up alone adds to each call an engine makes.

    .venv/bin/python bench/engines.py [-n ROUNDS] [--warmup N] [--pyoci PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.engines import (CTR_NAMESPACE, IMAGE, Containerd, Podman,  # noqa: E402
                                       engine_workdir, new_name, runtime_binary)

RUNTIMES = ("pyoci", "runc", "python+runc")


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def podman_run(podman: Podman) -> Callable[[], None]:
    def run() -> None:
        r = podman("run", "--rm", *podman.run_flags(), IMAGE, "true")
        if r.returncode != 0:
            raise RuntimeError(f"podman run with {podman.runtime}: {r.stderr}")
    return run


def ctr_run(daemon: Containerd, binary: str) -> Callable[[], None]:
    def run() -> None:
        r = daemon.ctr("run", "--rm", *daemon.run_flags(binary), IMAGE, new_name(), "true")
        if r.returncode != 0:
            raise RuntimeError(f"ctr run with {binary}: {r.stderr}")
    return run


def measure(cases: dict[str, dict[str, Callable[[], None]]], rounds: int, warmup: int
            ) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {c: {r: [] for r in RUNTIMES} for c in cases}
    for i in range(warmup + rounds):
        for case, by_runtime in cases.items():
            # Alternate which runtime goes first, so neither always runs on a warm cache.
            order = RUNTIMES if i % 2 == 0 else tuple(reversed(RUNTIMES))
            for runtime in order:
                elapsed = timed(by_runtime[runtime])
                if i >= warmup:
                    times[case][runtime].append(elapsed)
    return times


def python_floor(directory: Path, runc: str) -> str:
    """The python+runc runtime, named runc so engines treat it exactly like runc."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "runc"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, os, sys  # json: every runtime call reads or writes some\n"
                      f"os.execv({runc!r}, [{runc!r}, *sys.argv[1:]])\n")
    script.chmod(0o755)
    return str(script)


def table(times: dict[str, dict[str, list[float]]]) -> str:
    rows = [("case", *(f"{r} ms" for r in RUNTIMES), "pyoci/runc", "python+runc/runc")]
    for case, by_runtime in times.items():
        p, r, f = (statistics.median(by_runtime[x]) for x in RUNTIMES)
        rows.append((case, f"{p * 1000:.0f}", f"{r * 1000:.0f}", f"{f * 1000:.0f}",
                     f"{p / r:.2f}", f"{f / r:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pyoci", default=runtime_binary("pyoci"), help="the pyoci executable to time")
    a = ap.parse_args()
    with engine_workdir() as workdir:
        binaries = {"pyoci": a.pyoci, "runc": runtime_binary("runc")}
        binaries["python+runc"] = python_floor(workdir / "python-floor", binaries["runc"])
        podman = daemon = None
        try:
            podman = Podman(workdir / "podman", binaries["pyoci"]).setup()
            podman.build_images()
            archive = podman.save(IMAGE, workdir / "busybox.tar")
            daemon = Containerd(workdir / "containerd", binaries["pyoci"]).start()
            daemon.import_image(archive, CTR_NAMESPACE)
            cases = {
                "podman run --rm true": {r: podman_run(dataclasses.replace(podman, runtime=b))
                                         for r, b in binaries.items()},
                "ctr run --rm true": {r: ctr_run(daemon, b) for r, b in binaries.items()},
            }
            times = measure(cases, a.rounds, a.warmup)
            print(f"{a.rounds} rounds each (after {a.warmup} warm-up), runtimes alternating")
            print(table(times))
        finally:
            if daemon is not None:
                daemon.remove_all(CTR_NAMESPACE)
                daemon.stop()
            if podman is not None:
                podman.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
