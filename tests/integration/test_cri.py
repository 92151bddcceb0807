"""containerd's CRI plugin running a pod with pyoci, as a kubelet would through a
RuntimeClass whose handler's BinaryName is pyoci (handler `pyoci` in engines.py)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import grpc
import pytest

from .conftest import CriTest
from .cri_client import CONTAINER_EXITED, CONTAINER_RUNNING, container_config, pod_config
from .engines import CRI_CGROUP, IMAGE, Containerd, container_cgroups, new_name, runtime_name


def _sandbox_pid(cri: CriTest, pod_id: str) -> int:
    """The pause process: the one process of the sandbox's cgroup."""
    procs = Path(f"/sys/fs/cgroup/pids{CRI_CGROUP}/{pod_id}/cgroup.procs").read_text().split()
    assert len(procs) == 1, procs
    return int(procs[0])


def test_version_names_the_runtime(cri: CriTest) -> None:
    name, _ = cri.service.version()
    assert name == "containerd"


def test_pod_lifecycle_with_shared_namespaces(cri: CriTest) -> None:
    svc = cri.service
    # A host-network pod (no CNI here) keeps the host's UTS namespace, so no hostname.
    pod = cri.new_pod_config(hostname="")
    pod_id = svc.run_pod_sandbox(pod, handler="pyoci")
    cri.pods.append(pod_id)
    pause = _sandbox_pid(cri, pod_id)
    # start returns once the init is released, which may be before its execve is done.
    deadline = time.monotonic() + 10
    while (cmdline := Path(f"/proc/{pause}/cmdline").read_bytes()).split(b"\0")[0] != b"/bin/sleep":
        assert time.monotonic() < deadline, cmdline
        time.sleep(0.02)
    # The shim ran the sandbox with the handler's binary and root.
    runtime_root = cri.daemon.runc_root / "k8s.io"
    assert (runtime_root / pod_id).exists() or runtime_name(cri.daemon.runtime) != "pyoci"

    config = container_config("app", IMAGE, ["sh", "-c", "echo started >/tmp/started; sleep 1000"],
                              env={"GREETING": "hi"}, workdir="/tmp",
                              memory_limit=64 * 1024 * 1024, log_path="app.log")
    cid = svc.create_container(pod_id, config, pod)
    cri.containers.append(cid)
    svc.start_container(cid)
    assert svc.container_status(cid).state == CONTAINER_RUNNING

    limit = Path(f"/sys/fs/cgroup/memory{CRI_CGROUP}/{cid}/memory.limit_in_bytes")
    assert limit.read_text().strip() == str(64 * 1024 * 1024)

    # Joined the sandbox's namespaces by path: the same ipc, uts and pid namespaces.
    app = int(Path(f"/sys/fs/cgroup/pids{CRI_CGROUP}/{cid}/cgroup.procs").read_text().split()[0])
    for ns in ("ipc", "pid", "net"):
        assert os.readlink(f"/proc/{app}/ns/{ns}") == os.readlink(f"/proc/{pause}/ns/{ns}"), ns
    assert os.readlink(f"/proc/{app}/ns/mnt") != os.readlink(f"/proc/{pause}/ns/mnt")

    r = svc.exec_sync(cid, ["sh", "-c", 'echo "$GREETING $(pwd) $(hostname)"; '
                            "until [ -s /tmp/started ]; do sleep 0.02; done; cat /tmp/started; "
                            "tr '\\0' ' ' </proc/1/cmdline; exit 3"])
    assert r.exit_code == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == [f"hi /tmp {os.uname().nodename}", "started"]
    assert lines[2] == "/bin/sleep 2147483647 "  # PID 1 is the pause: one pid namespace

    svc.stop_container(cid, timeout=1)
    status = svc.container_status(cid)
    assert status.state == CONTAINER_EXITED
    # In the pod's pid namespace sh is not PID 1, so SIGTERM's default action ends it.
    assert status.exit_code == 143
    svc.remove_container(cid)
    svc.stop_pod_sandbox(pod_id)
    svc.remove_pod_sandbox(pod_id)
    assert pod_id not in svc.list_pod_ids()
    assert not (runtime_root / pod_id).exists()
    assert not (runtime_root / cid).exists()


def test_container_exit_code_and_log(cri: CriTest) -> None:
    svc = cri.service
    pod = cri.new_pod_config()
    pod_id = svc.run_pod_sandbox(pod, handler="pyoci")
    cri.pods.append(pod_id)
    config = container_config("job", IMAGE, ["sh", "-c", "echo job-output; exit 5"], log_path="job.log")
    cid = svc.create_container(pod_id, config, pod)
    cri.containers.append(cid)
    svc.start_container(cid)
    deadline = time.monotonic() + 20
    while (status := svc.container_status(cid)).state != CONTAINER_EXITED:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status.exit_code == 5
    log_dir = next(cri.daemon.workdir.glob("pod-logs/*/job.log"))
    assert "job-output" in log_dir.read_text()
    svc.remove_container(cid)
    svc.stop_pod_sandbox(pod_id)
    svc.remove_pod_sandbox(pod_id)


def test_sandbox_oom_score_adj_the_host_forbids_is_reported(
        workdir: Path, containerd_engine: Containerd, engine_runtime: str) -> None:
    """Without restrict_oom_score_adj the pause container asks for oomScoreAdj -998,
    which needs CAP_SYS_RESOURCE: RunPodSandbox must fail and say why."""
    from .cri_client import RuntimeService
    daemon = Containerd(workdir / "cri-unrestricted", engine_runtime,
                        restrict_oom_score_adj=False)
    try:
        daemon.start()
        daemon.import_image(workdir / "images" / "pause.tar", "k8s.io")
        service = RuntimeService(str(daemon.socket))
        try:
            pod = pod_config(new_name(), uuid.uuid4().hex, CRI_CGROUP, str(workdir), "")
            with pytest.raises(grpc.RpcError) as failure:
                service.run_pod_sandbox(pod, handler="pyoci")
            message = failure.value.details()
            assert "OCI runtime create failed" in message
            assert "unable to retrieve OCI runtime error" not in message
            if runtime_name(engine_runtime) == "pyoci":
                # (runc 1.1.5: "can't get final child's PID from pipe: EOF".)
                assert "oomScoreAdj -998" in message and "CAP_SYS_RESOURCE" in message, message
            assert service.list_pod_ids() == []
        finally:
            service.close()
    finally:
        daemon.remove_all("k8s.io")
        daemon.stop()
        assert not container_cgroups(CRI_CGROUP, ignore=())
