"""update, pause/resume, events, ps and kill --all on real containers (cgroups under
/pyoci-test-cg, state roots /tmp/pyoci-cgtest-*). RUNTIME=runc runs the same tests."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Bundle, Runtime

# The shared fixtures: each test's own state root and cgroup parent, checked for
# leftovers (cgroups, mounts) afterwards.
@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    return runtime


@pytest.fixture
def bun(bundle: Bundle) -> Bundle:
    return bundle


def _start(rt: Runtime, bun: Bundle, *args: str, resources: dict | None = None) -> str:
    if resources:
        bun.config["linux"]["resources"] = {**bun.config["linux"].get("resources", {}),
                                            **resources}
    bun.set_args(*args)
    cid = rt.new_id("cg")
    # The container keeps the runtime's stdio: give it a file, not the test's pipes.
    err = rt.tmp / f"{cid}.err"
    with open(err, "w") as e:
        proc = subprocess.run([rt.binary, "--root", str(rt.root), "run", "-d", "--bundle",
                               str(bun.path), cid], stdin=subprocess.DEVNULL, stdout=e,
                              stderr=e, timeout=30)
    assert proc.returncode == 0, err.read_text()
    return cid


def _cg_file(bun: Bundle, controller: str, name: str) -> str:
    path = bun.config["linux"]["cgroupsPath"]
    return (Path("/sys/fs/cgroup") / controller / path.strip("/") / name).read_text().strip()


def test_pause_freezes_and_resume_continues(rt: Runtime, bun: Bundle) -> None:
    cid = _start(rt, bun, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/null; done")
    assert rt("pause", cid).returncode == 0
    assert rt.state(cid)["status"] == "paused"
    assert _cg_file(bun, "freezer", "freezer.state") == "FROZEN"
    usage = _cg_file(bun, "cpuacct", "cpuacct.usage")
    time.sleep(0.3)
    assert _cg_file(bun, "cpuacct", "cpuacct.usage") == usage
    r = rt("pause", cid)  # already paused
    assert r.returncode != 0 and "not running" in r.stderr
    assert rt("resume", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    deadline = time.monotonic() + 10
    while _cg_file(bun, "cpuacct", "cpuacct.usage") == usage and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _cg_file(bun, "cpuacct", "cpuacct.usage") != usage
    r = rt("resume", cid)
    assert r.returncode != 0 and "not paused" in r.stderr


def test_update_changes_limits_of_a_running_container(rt: Runtime, bun: Bundle,
                                                      tmp_path: Path) -> None:
    cid = _start(rt, bun, "sleep", "100", resources={"memory": {"limit": 64 << 20},
                                                      "pids": {"limit": 30}})
    assert rt("update", "--memory", "96m", "--pids-limit", "40", cid).returncode == 0
    assert _cg_file(bun, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert _cg_file(bun, "pids", "pids.max") == "40"
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"cpu": {"shares": 256}, "pids": {"limit": 50}}))
    assert rt("update", "--resources", str(res), cid).returncode == 0
    assert _cg_file(bun, "cpu", "cpu.shares") == "256"
    assert _cg_file(bun, "pids", "pids.max") == "50"
    r = rt("update", "--resources=-", cid, input=json.dumps({"memory": {"limit": 80 << 20}}),
           stdin=None)
    assert r.returncode == 0, r.stderr
    assert _cg_file(bun, "memory", "memory.limit_in_bytes") == str(80 << 20)
    assert _cg_file(bun, "pids", "pids.max") == "50"


def test_ps_lists_exactly_the_container(rt: Runtime, bun: Bundle) -> None:
    cid = _start(rt, bun, "sh", "-c", "sleep 100 & sleep 100 & wait")
    deadline = time.monotonic() + 10
    while True:
        r = rt("ps", "--format", "json", cid)
        assert r.returncode == 0, r.stderr
        pids = json.loads(r.stdout)
        if len(pids) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    init = rt.state(cid)["pid"]
    assert len(pids) == 3 and init in pids
    procs = Path(f"/sys/fs/cgroup/pids{bun.config['linux']['cgroupsPath']}/cgroup.procs")
    assert sorted(pids) == sorted(int(x) for x in procs.read_text().split())
    r = rt("ps", cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "PID" in lines[0].split() and len(lines) == 4
    r = rt("ps", cid, "-o", "pid,comm")
    assert sorted(int(line.split()[0]) for line in r.stdout.splitlines()[1:]) == sorted(pids)


def test_kill_all_reaches_processes_outside_the_process_group(rt: Runtime,
                                                              bun: Bundle) -> None:
    bun.config["linux"]["namespaces"] = [n for n in bun.config["linux"]["namespaces"]
                                         if n["type"] != "pid"]
    cid = _start(rt, bun, "sh", "-c", "setsid sleep 100 & exec sleep 100")
    deadline = time.monotonic() + 10
    while len(json.loads(rt("ps", "--format", "json", cid).stdout)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = json.loads(rt("ps", "--format", "json", cid).stdout)
    assert rt("kill", "--all", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "Z" not in
              Path(f"/proc/{p}/stat").read_text().split()[2] for p in pids):
        assert time.monotonic() < deadline, "a process survived kill --all"
        time.sleep(0.02)


def test_events_stats_and_oom(rt: Runtime, bun: Bundle) -> None:
    cid = _start(rt, bun, "sh", "-c", "sleep 100",
                 resources={"memory": {"limit": 16 << 20, "swap": 16 << 20},
                            "pids": {"limit": 20}})
    r = rt("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    event = json.loads(r.stdout)
    assert event["type"] == "stats" and event["id"] == cid
    assert event["data"]["memory"]["usage"]["limit"] == 16 << 20
    assert event["data"]["pids"]["limit"] == 20
    assert event["data"]["pids"]["current"] >= 1


def test_events_reports_an_oom_kill(rt: Runtime, bun: Bundle) -> None:
    cid = _start(rt, bun, "sh", "-c",
                 "sleep 1; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
                 resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    # pyoci's `events` ends with the container; runc 1.1's keeps polling: read what it
    # printed once the container has stopped, then end it.
    out = rt.tmp / f"{cid}.events"
    with open(out, "w") as sink:
        events = subprocess.Popen([rt.binary, "--root", str(rt.root), "events", "--interval",
                                   "200ms", cid], stdout=sink, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL)
        try:
            rt.wait_status(cid, "stopped", timeout=60)
            try:
                events.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if events.poll() is None:
                events.terminate()
            events.wait()
    text = out.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert {"type": "oom", "id": cid} in lines, text[-500:]
    assert any(e["type"] == "stats" for e in lines)


@pytest.mark.parametrize("limit", [0, 1])
def test_a_pids_limit_below_two_is_a_real_limit(rt: Runtime, bun: Bundle, limit: int) -> None:
    """config-linux.md: 0 is a valid pids limit. The runtime's own processes must not
    trip over it: the container's program (exec'd, it needs no fork) runs under it."""
    if limit == 0 and not rt.is_pyoci:
        pytest.skip("runc 1.1.5 reads pids.limit 0 as unset (the spec says to honour it)")
    cid = _start(rt, bun, "sleep", "30", resources={"pids": {"limit": limit}})
    try:
        assert _cg_file(bun, "pids", "pids.max") == str(limit)
        assert rt.state(cid)["status"] == "running"
    finally:
        rt("delete", "--force", cid)
