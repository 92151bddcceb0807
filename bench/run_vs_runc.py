"""`pyoci run` against `runc run` of /bin/true in the busybox bundle, side by side.

The two runtimes alternate in one loop so the machine's noise falls on both alike;
the result is the median of each and their ratio (pyoci / runc; lower is better).

    sudo .venv/bin/python bench/run_vs_runc.py [--runs 30] [--other runc|crun]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_bundle(workdir: Path) -> Path:
    bundle = workdir / "bundle"
    subprocess.run(["bash", str(REPO / "bundles" / "make-busybox-bundle.sh"), str(bundle)],
                   check=True, stdout=subprocess.DEVNULL)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def time_run(binary: str, root: Path, bundle: Path, cid: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([binary, "--root", str(root), "run", "--bundle", str(bundle), cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{binary} run failed: {proc.stderr.decode().strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pyoci", default=str(REPO / ".venv" / "bin" / "pyoci"))
    parser.add_argument("--other", default="runc", help="the runtime to compare with")
    args = parser.parse_args()
    other = shutil.which(args.other) or args.other

    with tempfile.TemporaryDirectory(prefix="pyoci-bench-") as tmp:
        work = Path(tmp)
        bundle = make_bundle(work)
        roots = {"pyoci": work / "root-pyoci", "other": work / "root-other"}
        binaries = {"pyoci": args.pyoci, "other": other}
        times: dict[str, list[float]] = {"pyoci": [], "other": []}
        for name in ("pyoci", "other"):  # warm the page cache for both
            time_run(binaries[name], roots[name], bundle, f"bench-warm-{os.getpid()}")
        for i in range(args.runs):
            order = ("pyoci", "other") if i % 2 == 0 else ("other", "pyoci")
            for name in order:
                times[name].append(time_run(binaries[name], roots[name], bundle,
                                            f"bench-{os.getpid()}-{i}"))
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"runs: {args.runs} each, alternating")
    print(f"pyoci run /bin/true: median {med['pyoci'] * 1000:.1f} ms")
    print(f"{args.other} run /bin/true: median {med['other'] * 1000:.1f} ms")
    print(f"ratio pyoci/{args.other}: {med['pyoci'] / med['other']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
