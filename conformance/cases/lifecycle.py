"""runtime.md: the lifecycle, the operations and their error cases."""

from __future__ import annotations

import json
import os
import re

from conformance.bundle import CGROUP_PARENT
from conformance.context import Context, ns_inode
from conformance.outcome import CheckFailed, expect, expect_equal
from conformance.registry import case
from conformance.runtime import wait_until

SLEEPER = "sleep 30"
MARKER_SCRIPT = "echo ran > /ran-marker; echo ran"


@case("lifecycle.create-defers-program", "create does not run the program",
      "runtime.md#Lifecycle (step 2) / #Create",
      "After create returns, the environment exists but process.args has not been executed.")
def create_defers_program(ctx: Context) -> None:
    bundle = ctx.bundle(MARKER_SCRIPT)
    pid = ctx.create(bundle)
    expect(os.path.exists(f"/proc/{pid}"), f"container process {pid} does not exist after create")
    expect(not (bundle.rootfs / "ran-marker").exists(), "the program ran during create")
    expect_equal(ctx.status(bundle.cid), "created", "status after create")


@case("lifecycle.start-runs-program", "start runs the program",
      "runtime.md#Start / #Lifecycle (step 8)",
      "start executes the configured program of a created container.")
def start_runs_program(ctx: Context) -> None:
    bundle = ctx.bundle(MARKER_SCRIPT)
    output = ctx.run(bundle)
    expect((bundle.rootfs / "ran-marker").exists(), "no sign that the program ran after start")
    expect_equal(output.strip(), "ran", "container stdout")


@case("lifecycle.full-cycle", "create, state, start, kill, delete on one container",
      "runtime.md#Scope of a Container",
      "The caller that created a container can apply every operation to it.")
def full_cycle(ctx: Context) -> None:
    bundle = ctx.bundle(SLEEPER)
    ctx.create(bundle)
    for step, result in (("state", ctx.runtime.state(bundle.cid)), ("start", ctx.runtime.start(bundle.cid))):
        expect(result.ok, f"{step}: {result.describe()}")
    ctx.wait_status(bundle.cid, "running", 5)
    result = ctx.runtime.kill(bundle.cid, "KILL")
    expect(result.ok, f"kill: {result.describe()}")
    ctx.wait_status(bundle.cid, "stopped")
    result = ctx.runtime.delete(bundle.cid)
    expect(result.ok, f"delete: {result.describe()}")
    expect(not ctx.exists(bundle.cid), "state still answers after delete")


@case("lifecycle.config-frozen-at-create", "config.json edits after create are ignored",
      "runtime.md#Lifecycle (step 2) / #Create",
      "Changing config.json after create has no effect on the container.")
def config_frozen(ctx: Context) -> None:
    bundle = ctx.bundle("echo original")
    ctx.create(bundle)
    bundle.set_script("echo edited")
    bundle.config["hostname"] = "edited"
    bundle.write()
    ctx.start(bundle.cid)
    ctx.wait_status(bundle.cid, "stopped")
    expect_equal(ctx.output(bundle).strip(), "original", "program output")


@case("lifecycle.create-failure-leaves-nothing", "a failed create leaves no container behind",
      "runtime.md#Errors / #Create",
      "When create cannot apply the config it errors and no container, cgroup or process remains.")
def create_failure_clean(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.mounts.append({"destination": "/conf-missing", "type": "bind",
                          "source": str(bundle.path / "does-not-exist"), "options": ["bind"]})
    result = ctx.try_create(bundle)
    expect(not result.ok, "create succeeded although a bind source does not exist")
    expect(not ctx.exists(bundle.cid), "state still knows the container after a failed create")
    leftover = [c for c in ("pids", "memory", "cpu", "devices", "freezer")
                if os.path.exists(f"/sys/fs/cgroup/{c}{CGROUP_PARENT}/{bundle.cid}")]
    expect(not leftover, f"cgroups left behind in {leftover}")


@case("create.duplicate-id", "create with an id in use fails",
      "runtime.md#Create",
      "A second create with an id already in use errors and leaves the first container alone.")
def create_duplicate(ctx: Context) -> None:
    first = ctx.bundle(SLEEPER)
    pid = ctx.create(first)
    second = ctx.bundle(SLEEPER)
    result = ctx.try_create(second, cid=first.cid)
    expect(not result.ok, "second create with the same id succeeded")
    state = ctx.runtime.state_json(first.cid) or {}
    expect_equal((state.get("status"), state.get("pid"), state.get("bundle")),
                 ("created", pid, str(first.path)), "first container (status, pid, bundle)")


@case("create.invalid-id", "create with an unusable id fails",
      "runtime.md#Create",
      "An id that is not valid (here one containing a path separator) makes create error.")
def create_invalid_id(ctx: Context) -> None:
    bundle = ctx.bundle()
    result = ctx.try_create(bundle, cid=f"../{bundle.cid}")
    expect(not result.ok, "create accepted an id containing '/'")


@case("create.missing-id", "create without an id fails",
      "runtime.md#Create",
      "create errors when it is not given a container id.")
def create_missing_id(ctx: Context) -> None:
    bundle = ctx.bundle()
    bundle.write()
    result = ctx.runtime.call("create", "--bundle", str(bundle.path), "--pid-file", str(bundle.pid_file),
                              stdout_path=bundle.stdout_path, stderr_path=bundle.stderr_path)
    if result.ok:
        pid = bundle.pid_file.read_text().strip() if bundle.pid_file.exists() else "?"
        raise CheckFailed(f"create without an id succeeded (pid {pid})")


@case("create.missing-bundle", "create with no usable bundle fails",
      "runtime.md#Create",
      "create errors when the bundle path it is given holds no config.json.")
def create_missing_bundle(ctx: Context) -> None:
    bundle = ctx.bundle()
    empty = ctx.workdir / "empty-bundle"
    empty.mkdir()
    cid = bundle.cid
    ctx.track(cid)
    result = ctx.runtime.call("create", "--bundle", str(empty), "--pid-file", str(bundle.pid_file), cid,
                              stdout_path=bundle.stdout_path, stderr_path=bundle.stderr_path)
    expect(not result.ok, "create succeeded on a bundle without config.json")


@case("state.unknown-id", "state of an unknown id fails",
      "runtime.md#Query State",
      "Querying a container that does not exist errors.")
def state_unknown(ctx: Context) -> None:
    result = ctx.runtime.state(ctx.new_id())
    expect(not result.ok, f"state of an unknown id succeeded: {result.stdout.strip()[:200]}")


@case("state.missing-id", "state without an id fails",
      "runtime.md#Query State",
      "state errors when it is not given a container id.")
def state_missing_id(ctx: Context) -> None:
    result = ctx.runtime.call("state")
    expect(not result.ok, "state without an id succeeded")


@case("state.fields-created", "state of a created container",
      "runtime.md#State",
      "state reports ociVersion, the id, status created, the container pid and the absolute bundle path.")
def state_created(ctx: Context) -> None:
    bundle = ctx.bundle(SLEEPER)
    ctx.create(bundle)
    result = ctx.runtime.state(bundle.cid)
    expect(result.ok, f"state: {result.describe()}")
    state = json.loads(result.stdout)
    problems = state_schema_problems(state)
    expect(not problems, "; ".join(problems))
    expect_equal(state["id"], bundle.cid, "id")
    expect_equal(state["status"], "created", "status")
    expect_equal(state["bundle"], str(bundle.path), "bundle")
    pid = int(bundle.pid_file.read_text())
    expect_equal(state.get("pid"), pid, "pid (compared with --pid-file)")
    expect(ns_inode(pid, "uts") != ns_inode("self", "uts"), f"pid {pid} is not in the container's uts namespace")


@case("state.schema", "state JSON shape",
      "runtime.md#State",
      "The serialized state follows the state schema: required keys with the right types.")
def state_schema(ctx: Context) -> None:
    bundle = ctx.bundle(SLEEPER)
    bundle.config["annotations"] = {"org.example.conformance": "yes"}
    ctx.create(bundle)
    state = ctx.runtime.state_json(bundle.cid)
    expect(state is not None, "state printed no JSON object")
    problems = state_schema_problems(state or {})
    expect(not problems, "; ".join(problems))


@case("state.status-running", "state of a running container",
      "runtime.md#State",
      "After start, while the program lives, status is running and pid is the program's pid.")
def state_running(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    pid = ctx.create(bundle)
    ctx.start(bundle.cid)
    ctx.wait_status(bundle.cid, "running", 5)
    state = ctx.runtime.state_json(bundle.cid) or {}
    expect_equal(state.get("pid"), pid, "pid")
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        argv = handle.read().split(b"\0")
    expect(argv[:1] == [b"sleep"], f"pid {pid} runs {argv!r}, not the program")


@case("state.status-stopped", "state of an exited container",
      "runtime.md#State",
      "Once the program has exited, status is stopped.")
def state_stopped(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    ctx.run(bundle)
    expect_equal(ctx.status(bundle.cid), "stopped", "status")


@case("state.annotations", "annotations appear in state",
      "runtime.md#State",
      "The annotations of config.json are reported in the state.")
def state_annotations(ctx: Context) -> None:
    bundle = ctx.bundle(SLEEPER)
    wanted = {"org.example.conformance.one": "1", "org.example.conformance.two": "two words"}
    bundle.config["annotations"] = wanted
    ctx.create(bundle)
    state = ctx.runtime.state_json(bundle.cid) or {}
    expect_equal(state.get("annotations"), wanted, "annotations")


@case("start.running-fails", "start of a running container fails",
      "runtime.md#Start",
      "start on a container that is not created errors and does not touch the container.")
def start_running(ctx: Context) -> None:
    bundle = ctx.bundle("echo started >> /starts; exec sleep 30")
    pid = ctx.create(bundle)
    ctx.start(bundle.cid)
    ctx.wait_status(bundle.cid, "running", 5)
    result = ctx.runtime.start(bundle.cid)
    expect(not result.ok, "second start succeeded")
    state = ctx.runtime.state_json(bundle.cid) or {}
    expect_equal((state.get("status"), state.get("pid")), ("running", pid), "(status, pid) after the failed start")
    expect_equal((bundle.rootfs / "starts").read_text(), "started\n", "times the program started")


@case("start.stopped-fails", "start of a stopped container fails",
      "runtime.md#Start",
      "start on a stopped container errors and does not run the program again.")
def start_stopped(ctx: Context) -> None:
    bundle = ctx.bundle("echo started >> /starts")
    ctx.run(bundle)
    result = ctx.runtime.start(bundle.cid)
    expect(not result.ok, "start of a stopped container succeeded")
    expect_equal(ctx.status(bundle.cid), "stopped", "status")
    expect_equal((bundle.rootfs / "starts").read_text(), "started\n", "times the program started")


@case("start.unknown-id", "start of an unknown id fails",
      "runtime.md#Start",
      "start errors when the id names no container.")
def start_unknown(ctx: Context) -> None:
    expect(not ctx.runtime.start(ctx.new_id()).ok, "start of an unknown id succeeded")


@case("start.missing-id", "start without an id fails",
      "runtime.md#Start",
      "start errors when it is not given a container id.")
def start_missing(ctx: Context) -> None:
    expect(not ctx.runtime.call("start").ok, "start without an id succeeded")


@case("start.no-process", "start without process fails",
      "runtime.md#Start / config.md#Process",
      "A container whose config has no process cannot be started (create may already refuse it).")
def start_no_process(ctx: Context) -> None:
    bundle = ctx.bundle()
    del bundle.config["process"]
    result = ctx.try_create(bundle)
    if not result.ok:
        return
    started = ctx.runtime.start(bundle.cid)
    expect(not started.ok, "start succeeded for a container without process")


@case("kill.running", "kill delivers the signal",
      "runtime.md#Kill",
      "kill sends the named signal to the container process.")
def kill_running(ctx: Context) -> None:
    script = "trap 'echo got-TERM; exit 0' TERM; echo ready > /ready; while true; do sleep 0.05; done"
    bundle = ctx.bundle(script)
    ctx.create(bundle)
    ctx.start(bundle.cid)
    expect(wait_until(lambda: (bundle.rootfs / "ready").exists(), 5), "program never became ready")
    result = ctx.runtime.kill(bundle.cid, "TERM")
    expect(result.ok, f"kill: {result.describe()}")
    ctx.wait_status(bundle.cid, "stopped")
    expect_equal(ctx.output(bundle).strip(), "got-TERM", "program output")


@case("kill.created", "kill of a created container",
      "runtime.md#Kill",
      "A created container accepts a signal; SIGKILL stops it.")
def kill_created(ctx: Context) -> None:
    bundle = ctx.bundle(MARKER_SCRIPT)
    ctx.create(bundle)
    result = ctx.runtime.kill(bundle.cid, "KILL")
    expect(result.ok, f"kill: {result.describe()}")
    ctx.wait_status(bundle.cid, "stopped")
    expect(not (bundle.rootfs / "ran-marker").exists(), "the program ran")


@case("kill.stopped-fails", "kill of a stopped container fails",
      "runtime.md#Kill",
      "Signalling a container that is neither created nor running errors.")
def kill_stopped(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    ctx.run(bundle)
    result = ctx.runtime.kill(bundle.cid, "TERM")
    expect(not result.ok, "kill of a stopped container succeeded")
    expect_equal(ctx.status(bundle.cid), "stopped", "status")


@case("kill.missing-id", "kill without an id fails",
      "runtime.md#Kill",
      "kill errors when it is not given a container id.")
def kill_missing(ctx: Context) -> None:
    expect(not ctx.runtime.call("kill").ok, "kill without an id succeeded")


@case("delete.stopped", "delete of a stopped container removes it",
      "runtime.md#Delete",
      "delete of a stopped container succeeds and the id is gone, along with its cgroup.")
def delete_stopped(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    ctx.run(bundle)
    result = ctx.runtime.delete(bundle.cid)
    expect(result.ok, f"delete: {result.describe()}")
    expect(not ctx.exists(bundle.cid), "state still answers after delete")
    leftover = [c for c in ("pids", "memory", "cpu", "devices", "freezer")
                if os.path.exists(f"/sys/fs/cgroup/{c}{CGROUP_PARENT}/{bundle.cid}")]
    expect(not leftover, f"cgroup directories remain in {leftover}")


@case("delete.running-fails", "delete of a running container fails",
      "runtime.md#Delete",
      "delete without force on a running container errors and leaves it running.")
def delete_running(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    pid = ctx.create(bundle)
    ctx.start(bundle.cid)
    ctx.wait_status(bundle.cid, "running", 5)
    result = ctx.runtime.delete(bundle.cid)
    expect(not result.ok, "delete of a running container succeeded")
    state = ctx.runtime.state_json(bundle.cid) or {}
    expect_equal((state.get("status"), state.get("pid")), ("running", pid), "(status, pid) after the failed delete")


@case("delete.created-fails", "delete of a created container fails",
      "runtime.md#Delete",
      "delete without force on a container that is created (not stopped) errors and leaves it.")
def delete_created(ctx: Context) -> None:
    bundle = ctx.bundle(SLEEPER)
    pid = ctx.create(bundle)
    result = ctx.runtime.delete(bundle.cid)
    if result.ok:
        raise CheckFailed("delete of a created container succeeded (the container was destroyed)")
    state = ctx.runtime.state_json(bundle.cid) or {}
    expect_equal((state.get("status"), state.get("pid")), ("created", pid), "(status, pid) after the failed delete")


@case("delete.missing-id", "delete without an id fails",
      "runtime.md#Delete",
      "delete errors when it is not given a container id.")
def delete_missing(ctx: Context) -> None:
    expect(not ctx.runtime.call("delete").ok, "delete without an id succeeded")


@case("delete.keeps-foreign-resources", "delete keeps what the container did not create",
      "runtime.md#Delete",
      "Deleting a container leaves alone a namespace it joined and the host directory it bound.")
def delete_foreign(ctx: Context) -> None:
    owner = ctx.bundle(SLEEPER)
    owner_pid = ctx.create(owner)
    shared = ctx.workdir / "shared-data"
    shared.mkdir()
    (shared / "keep").write_text("keep\n")
    joiner = ctx.bundle("cat /data/keep")
    joiner.set_namespace("network", f"/proc/{owner_pid}/ns/net")
    joiner.mounts.append({"destination": "/data", "type": "bind", "source": str(shared),
                          "options": ["rbind", "rw"]})
    ctx.run(joiner)
    result = ctx.runtime.delete(joiner.cid)
    expect(result.ok, f"delete: {result.describe()}")
    expect((shared / "keep").exists(), "the bind-mounted host file was removed")
    expect_equal(ctx.status(owner.cid), "created", "status of the container whose network namespace was joined")
    expect(os.path.exists(f"/proc/{owner_pid}/ns/net"), "the joined namespace's owner is gone")


STATE_STATUSES = {"creating", "created", "running", "stopped", "paused"}


def state_schema_problems(state: dict[str, object]) -> list[str]:
    """The suite's own reading of the state schema: what must be there, and its type."""
    problems = []
    for key in ("ociVersion", "id", "status", "bundle"):
        if not isinstance(state.get(key), str):
            problems.append(f"{key} is missing or not a string: {state.get(key)!r}")
    version = state.get("ociVersion")
    if isinstance(version, str) and not _is_semver(version):
        problems.append(f"ociVersion {version!r} is not SemVer")
    status = state.get("status")
    if isinstance(status, str) and status not in STATE_STATUSES:
        problems.append(f"status {status!r} is not a known state")
    if status in ("created", "running") and not (isinstance(state.get("pid"), int) and state["pid"] > 0):  # type: ignore[operator]
        problems.append(f"pid missing or not a positive integer while {status}: {state.get('pid')!r}")
    bundle = state.get("bundle")
    if isinstance(bundle, str) and not bundle.startswith("/"):
        problems.append(f"bundle {bundle!r} is not absolute")
    annotations = state.get("annotations")
    if annotations is not None and not (isinstance(annotations, dict)
                                        and all(isinstance(v, str) for v in annotations.values())):
        problems.append(f"annotations is not a map of strings: {annotations!r}")
    return problems


def _is_semver(text: str) -> bool:
    return re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", text) is not None
