"""config.md POSIX-platform hooks and runtime.md lifecycle steps 3-13.

Hooks are /bin/sh scripts. Hooks of the runtime namespace live on the host; the
startContainer hook must resolve inside the container, so it lives in the rootfs. Every
hook appends its name to one log in the rootfs (the host sees it at <rootfs>/hooks.log,
the container at /hooks.log) and saves the state it read on stdin next to it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from conformance.bundle import Bundle
from conformance.context import Context, ns_inode
from conformance.outcome import CheckFailed, expect, expect_equal
from conformance.registry import case

CREATE_PHASE = ["prestart", "createRuntime", "createContainer"]
ALL_HOOKS = CREATE_PHASE + ["startContainer", "poststart", "poststop"]
CONTAINER_SIDE = {"startContainer"}  # path and files resolved inside the container


@dataclass(frozen=True)
class HookFiles:
    bundle: Bundle

    @property
    def log(self) -> Path:
        return self.bundle.rootfs / "hooks.log"

    def saved(self, name: str, what: str) -> Path:
        return self.bundle.rootfs / "conf-hooks" / f"{name}.{what}"

    def entries(self) -> list[str]:
        try:
            return self.log.read_text().split()
        except FileNotFoundError:
            return []


def add_hook(bundle: Bundle, kind: str, name: str | None = None, exit_code: int = 0,
             extra: str = "", timeout: int | None = None) -> HookFiles:
    """Adds a hook of `kind` that logs `name` (default: kind) and exits with exit_code."""
    label = name or kind
    hooks_dir = bundle.rootfs / "conf-hooks"
    hooks_dir.mkdir(mode=0o755, exist_ok=True)
    inside = kind in CONTAINER_SIDE
    base = "/conf-hooks" if inside else str(hooks_dir)
    log = "/hooks.log" if inside else str(bundle.rootfs / "hooks.log")
    script = (f"#!/bin/sh\ncat > {base}/{label}.state\n"
              f"readlink /proc/$$/ns/net > {base}/{label}.netns\n"
              f"{extra}\necho {label} >> {log}\nexit {exit_code}\n")
    path = hooks_dir / f"{label}.sh"
    path.write_text(script)
    path.chmod(0o755)
    entry: dict[str, object] = {"path": f"{base}/{label}.sh"}
    if timeout is not None:
        entry["timeout"] = timeout
    hooks = bundle.config.setdefault("hooks", {})
    hooks.setdefault(kind, []).append(entry)  # type: ignore[union-attr]
    return HookFiles(bundle)


PROGRAM = "echo program >> /hooks.log"


def _every_hook_bundle(ctx: Context) -> tuple[Bundle, HookFiles]:
    bundle = ctx.bundle(PROGRAM)
    files = HookFiles(bundle)
    for kind in ALL_HOOKS:
        add_hook(bundle, kind)
    return bundle, files


@case("hooks.order", "hooks run in lifecycle order",
      "config.md#POSIX-platform Hooks / runtime.md#Lifecycle",
      "prestart, createRuntime and createContainer run during create (in that order, before the program), "
      "startContainer runs in start before the program, poststart before start returns, "
      "poststop before delete returns.")
def order(ctx: Context) -> None:
    bundle, files = _every_hook_bundle(ctx)
    ctx.create(bundle)
    expect_equal(files.entries(), CREATE_PHASE, "hooks run when create returned")
    ctx.start(bundle.cid)
    after_start = files.entries()
    ctx.wait_status(bundle.cid, "stopped")
    result = ctx.runtime.delete(bundle.cid)
    expect(result.ok, f"delete: {result.describe()}")
    after_delete = files.entries()
    expect("poststart" in after_start, f"poststart had not run when start returned: {after_start}")
    expect("program" in after_delete, f"the program never ran: {after_delete}")
    hooks_only = [entry for entry in after_delete if entry != "program"]
    expect_equal(hooks_only, ALL_HOOKS, "order of hooks")
    expect(after_delete.index("program") > after_delete.index("startContainer"),
           f"the program ran before startContainer: {after_delete}")


@case("hooks.state-on-stdin", "hooks read the state on stdin",
      "config.md#POSIX-platform Hooks",
      "Every hook gets the container state as JSON on stdin, with the container's id and bundle.")
def state_on_stdin(ctx: Context) -> None:
    bundle, files = _every_hook_bundle(ctx)
    ctx.run(bundle)
    ctx.runtime.delete(bundle.cid)
    problems = []
    for name in ALL_HOOKS:
        try:
            state = json.loads(files.saved(name, "state").read_text())
        except FileNotFoundError:
            problems.append(f"{name}: did not run")
            continue
        except ValueError:
            problems.append(f"{name}: stdin was not JSON")
            continue
        if state.get("id") != bundle.cid or state.get("bundle") != str(bundle.path):
            problems.append(f"{name}: id/bundle {state.get('id')!r}/{state.get('bundle')!r}")
        if name in ("createContainer", "startContainer", "poststart") and not isinstance(state.get("pid"), int):
            problems.append(f"{name}: no pid while the container process exists")
    expect(not problems, "; ".join(problems))


@case("hooks.namespaces", "hooks run in the namespaces the spec assigns",
      "config.md#POSIX-platform Hooks",
      "prestart, createRuntime, poststart and poststop run in the runtime namespace; "
      "createContainer and startContainer run in the container namespace.")
def namespaces(ctx: Context) -> None:
    bundle, files = _every_hook_bundle(ctx)
    bundle.set_script("exec sleep 30")
    pid = ctx.create(bundle)
    ctx.start(bundle.cid)
    container_net = f"net:[{ns_inode(pid, 'net')}]"
    runtime_net = f"net:[{ns_inode('self', 'net')}]"
    ctx.runtime.kill(bundle.cid, "KILL")
    ctx.wait_status(bundle.cid, "stopped")
    ctx.runtime.delete(bundle.cid)
    problems = []
    for name in ALL_HOOKS:
        wanted = container_net if name in ("createContainer", "startContainer") else runtime_net
        try:
            seen = files.saved(name, "netns").read_text().strip()
        except FileNotFoundError:
            problems.append(f"{name}: did not run")
            continue
        if seen != wanted:
            where = "container" if wanted == container_net else "runtime"
            problems.append(f"{name}: ran in {seen}, not the {where} namespace {wanted}")
    expect(not problems, "; ".join(problems))


@case("hooks.args-env", "hook args and env",
      "config.md#POSIX-platform Hooks",
      "A hook runs its path with exactly its args as argv and its env as environment.")
def args_env(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    out = ctx.workdir / "hook-args"
    script = ctx.write_executable(ctx.workdir / "args-hook.sh",
                                  f"#!/bin/sh\necho \"$0|$1|$2|$CONF_HOOK_VAR\" > {out}\nenv | wc -l >> {out}\n")
    bundle.config["hooks"] = {"createRuntime": [{
        "path": str(script), "args": ["conf-argv0", "first", "second arg"], "env": ["CONF_HOOK_VAR=set"]}]}
    ctx.create(bundle)
    lines = out.read_text().splitlines() if out.exists() else []
    expect(bool(lines), "the hook did not run")
    expect_equal(lines[0].split("|")[1:], ["first", "second arg", "set"], "hook $1|$2|$CONF_HOOK_VAR")
    # busybox sh adds PWD (and maybe SHLVL) itself; the runtime must add nothing else.
    expect(int(lines[1]) <= 3, f"the hook saw {lines[1]} environment variables, only 1 was configured")


def _failing_create_hook(ctx: Context, kind: str) -> None:
    bundle = ctx.bundle("echo program >> /hooks.log")
    files = add_hook(bundle, kind, exit_code=1)
    result = ctx.try_create(bundle)
    expect(not result.ok, f"create succeeded although the {kind} hook failed")
    expect("program" not in files.entries(), "the program ran")
    expect(not ctx.exists(bundle.cid), f"the container still exists after the failed {kind} hook")


@case("hooks.prestart-failure", "a failing prestart hook fails create",
      "runtime.md#Lifecycle (step 3)",
      "If a prestart hook fails, create errors, the program never runs and the container is destroyed.")
def prestart_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "prestart")


@case("hooks.create-runtime-failure", "a failing createRuntime hook fails create",
      "runtime.md#Lifecycle (step 4)",
      "If a createRuntime hook fails, create errors, the program never runs and the container is destroyed.")
def create_runtime_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "createRuntime")


@case("hooks.create-container-failure", "a failing createContainer hook fails create",
      "runtime.md#Lifecycle (step 5)",
      "If a createContainer hook fails, create errors, the program never runs and the container is destroyed.")
def create_container_failure(ctx: Context) -> None:
    _failing_create_hook(ctx, "createContainer")


@case("hooks.failure-runs-poststop", "poststop hooks run after a failed create",
      "runtime.md#Lifecycle (steps 3, 12, 13)",
      "A failing create hook sends the lifecycle to destruction, which ends with the poststop hooks.")
def failure_runs_poststop(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    add_hook(bundle, "createRuntime", exit_code=1)
    files = add_hook(bundle, "poststop")
    ctx.try_create(bundle)
    expect("poststop" in files.entries(), f"hooks that ran: {files.entries()}")


@case("hooks.start-container-failure", "a failing startContainer hook fails start",
      "runtime.md#Lifecycle (step 7)",
      "If a startContainer hook fails, start errors, the program does not run and the container is stopped.")
def start_container_failure(ctx: Context) -> None:
    bundle = ctx.bundle(PROGRAM)
    files = add_hook(bundle, "startContainer", exit_code=1)
    ctx.create(bundle)
    result = ctx.runtime.start(bundle.cid)
    expect(not result.ok, "start succeeded although the startContainer hook failed")
    status = ctx.status(bundle.cid)
    if status is not None:
        ctx.wait_status(bundle.cid, "stopped", 5)
    expect("program" not in files.entries(), f"the program ran: {files.entries()}")


@case("hooks.poststart-failure", "a failing poststart hook fails start",
      "runtime.md#Lifecycle (step 9)",
      "If a poststart hook fails, start errors and the container is stopped.")
def poststart_failure(ctx: Context) -> None:
    bundle = ctx.bundle("exec sleep 30")
    add_hook(bundle, "poststart", exit_code=1)
    ctx.create(bundle)
    result = ctx.runtime.start(bundle.cid)
    expect(not result.ok, "start succeeded although the poststart hook failed")
    if ctx.status(bundle.cid) is not None:
        ctx.wait_status(bundle.cid, "stopped", 5)


@case("hooks.poststop-failure-warns", "a failing poststop hook is only a warning",
      "runtime.md#Lifecycle (step 13) / #Warnings",
      "A failing poststop hook does not fail delete, and the remaining poststop hooks still run.")
def poststop_failure(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    add_hook(bundle, "poststop", name="first", exit_code=1)
    files = add_hook(bundle, "poststop", name="second")
    ctx.run(bundle)
    result = ctx.runtime.delete(bundle.cid)
    expect(result.ok, f"delete failed because of the poststop hook: {result.describe()}")
    expect_equal(files.entries(), ["first", "second"], "poststop hooks that ran")
    expect(not ctx.exists(bundle.cid), "the container still exists")


@case("hooks.timeout", "a hook over its timeout is aborted",
      "config.md#POSIX-platform Hooks",
      "A hook that runs longer than its timeout is stopped and counts as failed, so create errors.")
def timeout(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    files = add_hook(bundle, "createRuntime", extra="exec sleep 8", timeout=1)
    result = ctx.try_create(bundle)
    expect(not result.timed_out, "create was still waiting for the hook after 20s")
    expect(not result.ok, "create succeeded although the hook overran its timeout")
    expect("createRuntime" not in files.entries(), "the hook ran to completion")


@case("hooks.path-in-container", "startContainer path resolves in the container",
      "config.md#POSIX-platform Hooks",
      "startContainer's path names a file of the container's filesystem, absent from the host.")
def path_in_container(ctx: Context) -> None:
    bundle = ctx.bundle("true")
    files = add_hook(bundle, "startContainer")
    host_path = Path("/conf-hooks/startContainer.sh")
    if os.path.exists(host_path):
        raise CheckFailed(f"{host_path} exists on the host; cannot tell where the path was resolved")
    ctx.run(bundle)
    expect_equal(files.entries(), ["startContainer"], "hooks that ran")
