"""Hooks: each kind at its moment, in its namespaces, with the state on stdin; the
lifecycle's reaction to failing hooks; timeouts.

The hooks and the program share one directory: the host's `hooks` folder, bound on the
container's /tmp. Host-side hooks name it by its host path, startContainer (resolved in
the container) by /tmp.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Bundle, Runtime
from .termhelp import own_root

CREATE_PHASE = ["prestart", "createRuntime", "createContainer"]
ALL = CREATE_PHASE + ["startContainer", "poststart", "poststop"]


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    own_root(runtime, "tty")
    return runtime


@pytest.fixture
def hooks_dir(tmp_path: Path, bundle: Bundle) -> Path:
    d = tmp_path / "hooks"
    d.mkdir()
    bundle.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(d),
                                    "options": ["rbind", "rw"]})
    bundle.write()
    return d


def add_hook(bundle: Bundle, hooks_dir: Path, kind: str, name: str | None = None,
             exit_code: int = 0, extra: str = "", **entry: object) -> None:
    name = name or kind
    inside = kind == "startContainer"
    base = "/tmp" if inside else str(hooks_dir)
    script = hooks_dir / f"{name}.sh"
    script.write_text(f"#!/bin/sh\ncat > {base}/{name}.json\n"
                      f"readlink /proc/self/ns/net > {base}/{name}.net\n"
                      f"readlink /proc/self/ns/mnt > {base}/{name}.mnt\n"
                      f"{extra}\necho {name} >> {base}/log\nexit {exit_code}\n")
    script.chmod(0o755)
    bundle.config.setdefault("hooks", {}).setdefault(kind, []).append(
        {"path": f"{base}/{name}.sh", **entry})
    bundle.write()


def log(hooks_dir: Path) -> list[str]:
    try:
        return (hooks_dir / "log").read_text().split()
    except FileNotFoundError:
        return []


def test_each_hook_at_its_moment_with_state_and_namespaces(rt: Runtime, bundle: Bundle,
                                                           hooks_dir: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5 runs poststart hooks during create (fixed after 1.1)")
    for kind in ALL:
        add_hook(bundle, hooks_dir, kind, extra=f"echo {kind}-args \"$@\" > {'/tmp' if kind == 'startContainer' else hooks_dir}/{kind}.args")
    bundle.set_args("sh", "-c", "echo program >> /tmp/log; sleep 300")
    cid = rt.new_id("hook")
    r = rt("create", "--bundle", str(bundle.path), cid)
    assert r.returncode == 0, r.stderr
    assert log(hooks_dir) == CREATE_PHASE
    pid = rt.state(cid)["pid"]
    assert rt("start", cid).returncode == 0
    after_start = log(hooks_dir)
    assert after_start[:5] == CREATE_PHASE + ["startContainer", "poststart"] or \
        after_start[:4] == CREATE_PHASE + ["startContainer"], after_start
    assert "poststart" in after_start, "poststart runs before start returns"
    assert rt("kill", cid, "KILL").returncode == 0
    rt.wait_status(cid, "stopped")
    assert rt("delete", cid).returncode == 0
    assert [e for e in log(hooks_dir) if e != "program"] == ALL
    entries = log(hooks_dir)
    assert entries.index("program") > entries.index("startContainer")

    host_net, container_net = os.readlink("/proc/self/ns/net"), None
    for kind in ALL:
        state = json.loads((hooks_dir / f"{kind}.json").read_text())
        assert state["id"] == cid and state["bundle"] == str(bundle.path), (kind, state)
        net = (hooks_dir / f"{kind}.net").read_text().strip()
        if kind in ("createContainer", "startContainer"):
            container_net = container_net or net
            assert net != host_net and net == container_net, kind
            assert (hooks_dir / f"{kind}.mnt").read_text().strip() != os.readlink("/proc/self/ns/mnt")
        else:
            assert net == host_net, kind
        if kind == "poststop":
            assert state["status"] == "stopped"
        else:
            assert state["pid"] == pid, (kind, state)
            assert state["status"] in ("creating", "created", "running"), (kind, state)


def test_hook_args_env(rt: Runtime, bundle: Bundle, hooks_dir: Path) -> None:
    script = hooks_dir / "argv.sh"
    script.write_text(f"#!/bin/sh\necho \"$1|$2|$FOO|$HOME\" > {hooks_dir}/argv.out\n")
    script.chmod(0o755)
    bundle.config["hooks"] = {"createRuntime": [{"path": str(script), "args": ["name0", "a", "b"],
                                                 "env": ["FOO=bar"]}]}
    bundle.write()
    cid = rt.new_id("hook")
    assert rt("create", "--bundle", str(bundle.path), cid).returncode == 0
    # args[1:] are the arguments; env replaces the environment (no HOME from ours)
    assert (hooks_dir / "argv.out").read_text().strip() == "a|b|bar|"


@pytest.mark.parametrize("kind", CREATE_PHASE)
def test_failing_create_hook_fails_create_and_runs_poststop(rt: Runtime, bundle: Bundle,
                                                            hooks_dir: Path, kind: str) -> None:
    add_hook(bundle, hooks_dir, kind, exit_code=1)
    add_hook(bundle, hooks_dir, "poststop")
    cid = rt.new_id("hook")
    r = rt("create", "--bundle", str(bundle.path), cid)
    assert r.returncode != 0
    assert rt("state", cid).returncode != 0, "nothing of the container is left"
    if rt.is_pyoci:  # runc 1.1.5 runs no poststop hooks after a failed create
        assert log(hooks_dir) == CREATE_PHASE[:CREATE_PHASE.index(kind) + 1][-1:] + ["poststop"] \
            or log(hooks_dir)[-1] == "poststop", log(hooks_dir)


def test_failing_start_container_hook_fails_start(rt: Runtime, bundle: Bundle,
                                                  hooks_dir: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5: start succeeds although the startContainer hook failed")
    add_hook(bundle, hooks_dir, "startContainer", exit_code=1)
    bundle.set_args("sh", "-c", "echo program >> /tmp/log")
    cid = rt.new_id("hook")
    assert rt("create", "--bundle", str(bundle.path), cid).returncode == 0
    r = rt("start", cid)
    assert r.returncode != 0
    assert "startContainer" in r.stderr
    rt.wait_status(cid, "stopped")
    assert "program" not in log(hooks_dir)


def test_failing_poststart_hook_fails_start_and_stops(rt: Runtime, bundle: Bundle,
                                                      hooks_dir: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5 runs poststart hooks during create")
    add_hook(bundle, hooks_dir, "poststart", exit_code=1)
    bundle.set_args("sleep", "300")
    cid = rt.new_id("hook")
    assert rt("create", "--bundle", str(bundle.path), cid).returncode == 0
    assert rt("start", cid).returncode != 0
    rt.wait_status(cid, "stopped")


def test_failing_poststop_hook_only_warns(rt: Runtime, bundle: Bundle, hooks_dir: Path) -> None:
    if not rt.is_pyoci:
        pytest.skip("runc 1.1.5 stops at the first failing poststop hook")
    add_hook(bundle, hooks_dir, "poststop", name="first", exit_code=1)
    add_hook(bundle, hooks_dir, "poststop", name="second")
    cid = rt.new_id("hook")
    assert rt("run", "--bundle", str(bundle.path), "--keep", cid).returncode == 0
    r = rt("delete", cid)
    assert r.returncode == 0, r.stderr
    assert log(hooks_dir) == ["first", "second"]
    assert "first" in r.stderr, "the failure is reported as a warning"
    assert rt("state", cid).returncode != 0


def test_hook_over_its_timeout_is_killed(rt: Runtime, bundle: Bundle, hooks_dir: Path) -> None:
    add_hook(bundle, hooks_dir, "createRuntime", extra="exec sleep 20", timeout=1)
    cid = rt.new_id("hook")
    r = rt("create", "--bundle", str(bundle.path), cid, timeout=15)
    assert r.returncode != 0
    assert "createRuntime" not in log(hooks_dir), "the hook ran to completion"
    assert rt("state", cid).returncode != 0
