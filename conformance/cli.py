"""`python -m conformance --runtime PATH`: run the cases in order and report."""

from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from conformance.bundle import CGROUP_PARENT, build_base_rootfs
from conformance.cases import MODULES
from conformance.context import Context
from conformance.outcome import CheckFailed, Skipped
from conformance.registry import Case, collect
from conformance.report import FAIL, PASS, SKIP, CaseResult, TapWriter, write_json
from conformance.runtime import Runtime

PR_SET_CHILD_SUBREAPER = 36


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="OCI runtime-spec conformance suite for runc-compatible runtimes.")
    parser.add_argument("--runtime", required=True, help="runtime binary (runc, crun, pyoci, ...)")
    parser.add_argument("--filter", metavar="PATTERN",
                        help="regular expression; run only cases whose id it matches")
    parser.add_argument("--report", metavar="FILE.json", type=Path, help="write a JSON report")
    parser.add_argument("--runtime-arg", metavar="ARG", action="append", default=[],
                        help="global option passed before the command (repeat; write --runtime-arg=--x=y)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--no-cgroups-path", action="store_true",
                        help="leave linux.cgroupsPath out of bundles (cgroup cases then skip)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = collect(MODULES, args.filter)
    if args.list:
        for case in cases:
            print(f"{case.info.id}\t{case.info.section}\t{case.info.title}")
        return 0
    path = shutil.which(args.runtime) or args.runtime
    path = os.path.abspath(path) if os.sep in path else path
    if not os.access(path, os.X_OK):
        print(f"conformance: runtime {args.runtime!r} is not an executable", file=sys.stderr)
        return 2
    name = os.path.basename(path)
    pid = os.getpid()
    root = Path(f"/tmp/pyoci-conformance-{name}-{pid}")
    workdir = Path(f"/tmp/pyoci-conformance-work-{name}-{pid}")
    runtime = Runtime(path=path, root=str(root), global_args=tuple(args.runtime_arg))
    _become_subreaper()
    results: list[CaseResult] = []
    try:
        root.mkdir(mode=0o700)
        workdir.mkdir(mode=0o755)
        base = build_base_rootfs(workdir / "base-rootfs")
        tap = TapWriter(sys.stdout, len(cases))
        tap.comment(f"runtime: {path} {' '.join(args.runtime_arg)}".rstrip())
        ids = (f"conf-{pid}-{n}" for n in itertools.count(1))
        for number, case in enumerate(cases, 1):
            casedir = workdir / f"case{number}"
            casedir.mkdir(mode=0o755)
            context = Context(runtime=runtime, base_rootfs=base, workdir=casedir,
                              new_id=lambda: next(ids), with_cgroups_path=not args.no_cgroups_path)
            result = run_case(case, context)
            results.append(result)
            tap.result(result)
            _reap_orphans()
        tap.summary(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        _remove_cgroup_parents()
    if args.report:
        write_json(args.report, path, results)
    return 1 if any(result.outcome == FAIL for result in results) else 0


def run_case(case: Case, context: Context) -> CaseResult:
    began = time.monotonic()
    outcome, detail = PASS, ""
    try:
        case.run(context)
    except CheckFailed as failure:
        outcome, detail = FAIL, str(failure)
    except Skipped as skip:
        outcome, detail = SKIP, str(skip)
    except Exception as error:  # a suite bug or a runtime so broken the case could not proceed
        frame = traceback.extract_tb(error.__traceback__)[-1]
        outcome = FAIL
        detail = f"case raised {type(error).__name__}: {error} (at {os.path.basename(frame.filename)}:{frame.lineno})"
    finally:
        problems = context.cleanup()
    if problems and outcome != FAIL:
        outcome, detail = FAIL, "cleanup: " + "; ".join(problems)
    elif problems:
        detail += " (cleanup: " + "; ".join(problems) + ")"
    return CaseResult.of(case.info, outcome, detail, time.monotonic() - began)


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"conformance: cannot become a child subreaper: errno {ctypes.get_errno()}",
              file=sys.stderr)


def _reap_orphans() -> None:
    # Safe only between cases: no subprocess of ours is alive whose status we still want.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _remove_cgroup_parents() -> None:
    # The runtime makes the shared parent; it is removed only when no one else uses it.
    base = Path("/sys/fs/cgroup")
    if not base.is_dir():
        return
    for hierarchy in base.iterdir():
        try:
            (hierarchy / CGROUP_PARENT.lstrip("/")).rmdir()
        except OSError:
            pass
