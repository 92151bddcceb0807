"""Fixtures for the engine integration tests: one temp dir for all engine state, podman
and a private containerd set up once per session, and per-test checks that nothing a
test started is left behind (container, pyoci state, cgroup, mount, process).

ENGINE_RUNTIME=runc runs the same tests with Debian's runc in place of pyoci.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .engines import (CRI_CGROUP, CTR_NAMESPACE, IMAGE, PAUSE_IMAGE, PODMAN_CGROUP, Containerd,
                      Podman, Result, container_cgroups, default_state_root, engine_workdir,
                      mounts_under, new_name, pids_mentioning,
                      runtime_binary, wait_gone)



def pytest_report_header(config: pytest.Config) -> str:
    return f"engine runtime: {runtime_binary()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine_runtime() -> str:
    binary = runtime_binary()
    assert os.access(binary, os.X_OK), f"runtime {binary} is not executable"
    return binary


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    with engine_workdir() as path:
        yield path


@pytest.fixture(scope="session")
def podman_engine(workdir: Path, engine_runtime: str) -> Iterator[Podman]:
    podman = Podman(workdir / "podman", engine_runtime).setup()
    try:
        podman.build_images()
        yield podman
    finally:
        podman.teardown()


@dataclass
class PodmanTest:
    """podman for one test: names it gives out are checked and removed afterwards."""

    podman: Podman
    names: list[str] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 60, input: str | None = None) -> Result:
        return self.podman(*args, timeout=timeout, input=input)

    def new(self) -> str:
        name = new_name()
        self.names.append(name)
        return name

    def run(self, *args: str, name: str | None = None, timeout: float = 60,
            input: str | None = None) -> Result:
        """`podman run` with the tests' flags; args are run's options, image and command."""
        name = name or self.new()
        return self.podman("run", "--name", name, "--cidfile", str(self.cidfile(name)),
                           *self.podman.run_flags(), *args, timeout=timeout, input=input)

    def cidfile(self, name: str) -> Path:
        d = self.podman.workdir / "cids"
        d.mkdir(exist_ok=True)
        return d / name

    def cid(self, name: str) -> str:
        return self.cidfile(name).read_text().strip()

    def inspect(self, name: str, fmt: str) -> str:
        return self.podman.ok("inspect", "--format", fmt, name)

    def wait_status(self, name: str, status: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while (current := self.inspect(name, "{{.State.Status}}")) != status:
            assert time.monotonic() < deadline, f"{name}: {current}, wanted {status}"
            time.sleep(0.1)

    def run_in_pty(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """`podman` with a pty as its stdin/stdout/stderr, as at a terminal."""
        return run_in_pty(self.podman.argv(*args), self.podman.env, timeout)


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
        os.close(slave)
        slave = -1
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: every holder of the slave has closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        return code, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


@pytest.fixture
def podman(podman_engine: Podman, engine_runtime: str) -> Iterator[PodmanTest]:
    pt = PodmanTest(podman_engine)
    try:
        yield pt
    finally:
        cids = [pt.cid(n) for n in pt.names if pt.cidfile(n).exists()]
        for name in [n for n in pt.names if n in podman_engine.names()]:
            podman_engine("rm", "--force", "--time", "0", name, timeout=120)
        # conmon's exit command cleans up asynchronously after an `--rm` run.
        wait_gone([p for cid in cids for p in pids_mentioning(cid)], timeout=15)
        state_root = default_state_root(engine_runtime)
        leftover = [n for n in pt.names if n in podman_engine.names()]
        assert not leftover, f"podman could not remove: {leftover}"
        assert not [c for c in cids if (state_root / c).exists()], f"state left in {state_root}"
        assert not container_cgroups(PODMAN_CGROUP), "cgroups left behind"
        assert not [p for cid in cids for p in pids_mentioning(cid)], "processes left behind"
        overlay = podman_engine.workdir / "root" / "overlay"
        assert not [m for m in mounts_under(overlay) if not m.endswith("/overlay")], \
            "container rootfs left mounted"


# --- containerd ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def containerd_engine(workdir: Path, podman_engine: Podman, engine_runtime: str
                      ) -> Iterator[Containerd]:
    images = workdir / "images"
    images.mkdir()
    busybox = podman_engine.save(IMAGE, images / "busybox.tar")
    pause = podman_engine.save(PAUSE_IMAGE, images / "pause.tar")
    daemon = Containerd(workdir / "containerd", engine_runtime)
    try:
        daemon.start()
        daemon.import_image(busybox, CTR_NAMESPACE)
        daemon.import_image(busybox, "k8s.io")
        daemon.import_image(pause, "k8s.io")
        yield daemon
    finally:
        for ns in (CTR_NAMESPACE, "k8s.io"):
            try:
                daemon.remove_all(ns)
            except Exception:  # the daemon may be the thing that failed
                pass
        daemon.stop()


@dataclass
class CtrTest:
    daemon: Containerd
    names: list[str] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 60, input: str | None = None) -> Result:
        return self.daemon.ctr(*args, timeout=timeout, input=input)

    def new(self) -> str:
        name = new_name()
        self.names.append(name)
        return name

    def run(self, *options: str, cmd: tuple[str, ...], name: str | None = None,
            timeout: float = 60, input: str | None = None) -> Result:
        name = name or self.new()
        return self.daemon.ctr("run", *self.daemon.run_flags(), *options, IMAGE, name, *cmd,
                               timeout=timeout, input=input)

    def exec_argv(self, name: str, exec_id: str, *cmd: str, tty: bool = False) -> list[str]:
        """`ctr tasks exec`, its fifos in our temp dir."""
        return ["ctr", "--address", str(self.daemon.socket), "--namespace", CTR_NAMESPACE, "tasks",
                "exec", "--fifo-dir", str(self.daemon.workdir / "fifo"), *(["-t"] if tty else []),
                "--exec-id", exec_id, name, *cmd]

    def run_in_pty(self, *options: str, cmd: tuple[str, ...], timeout: float = 60) -> tuple[int, str]:
        name = self.new()
        argv = ["ctr", "--address", str(self.daemon.socket), "--namespace", CTR_NAMESPACE, "run",
                *self.daemon.run_flags(), *options, IMAGE, name, *cmd]
        return run_in_pty(argv, dict(os.environ), timeout)


@pytest.fixture
def ctr(containerd_engine: Containerd) -> Iterator[CtrTest]:
    ct = CtrTest(containerd_engine)
    try:
        yield ct
    finally:
        tasks = containerd_engine.ctr("tasks", "ls", "-q").stdout.split()
        containers = containerd_engine.ctr("containers", "ls", "-q").stdout.split()
        for name in [n for n in ct.names if n in tasks or n in containers]:
            containerd_engine.ctr("tasks", "kill", "-a", "-s", "SIGKILL", name)
            containerd_engine.ctr("tasks", "delete", "-f", name)
            containerd_engine.ctr("containers", "delete", name)
        shims = [p for n in ct.names for p in pids_mentioning(f"-id {n} ")]
        wait_gone(shims, timeout=15)
        state_root = containerd_engine.runc_root / CTR_NAMESPACE
        containers = containerd_engine.ctr("containers", "ls", "-q").stdout.split()
        leftover = [n for n in ct.names if n in containers]
        assert not leftover, f"containerd could not remove: {leftover}"
        assert not [n for n in ct.names if (state_root / n).exists()], f"state left in {state_root}"
        assert not container_cgroups(f"/{CTR_NAMESPACE}", ignore=()), "cgroups left behind"
        assert not [m for m in mounts_under(containerd_engine.workdir / "state")
                    if any(n in m for n in ct.names)], "rootfs left mounted"


@pytest.fixture
def cri(containerd_engine: Containerd) -> Iterator["CriTest"]:
    from .cri_client import RuntimeService
    service = RuntimeService(str(containerd_engine.socket))
    ct = CriTest(containerd_engine, service)
    try:
        yield ct
    finally:
        for pod in ct.pods:
            try:
                service.stop_pod_sandbox(pod)
                service.remove_pod_sandbox(pod)
            except Exception:
                pass
        left_pods = [p for p in ct.pods if p in _pod_ids(service)]
        service.close()
        state_root = containerd_engine.runc_root / "k8s.io"
        assert not left_pods, f"pods left behind: {left_pods}"
        assert not [c for c in ct.ids() if (state_root / c).exists()], f"state left in {state_root}"
        assert not container_cgroups(CRI_CGROUP, ignore=()), "cgroups left behind"
        assert not [m for m in mounts_under(containerd_engine.workdir / "state")
                    if any(c in m for c in ct.ids())], "sandbox or rootfs left mounted"


def _pod_ids(service) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        return service.list_pod_ids()
    except Exception:
        return []


@dataclass
class CriTest:
    daemon: Containerd
    service: object
    pods: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return self.pods + self.containers

    def new_pod_config(self, hostname: str = ""):  # -> cri_client.Message
        from .cri_client import pod_config
        logs = self.daemon.workdir / "pod-logs" / uuid.uuid4().hex[:8]
        logs.mkdir(parents=True)
        return pod_config(new_name(), uuid.uuid4().hex, CRI_CGROUP, str(logs), hostname)
