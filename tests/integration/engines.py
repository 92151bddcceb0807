"""Real container engines, set up in a temp dir of their own, calling pyoci (or runc).

Used by the integration tests and by bench/engines.py. Everything an engine keeps
(podman's storage and locks, containerd's root, state and socket, pyoci's state for
containerd) lives under one /tmp/pyoci-engines-* dir; `teardown` leaves no engine
process, no mount and no cgroup behind, whatever state the tests left things in.

ENGINE_RUNTIME=runc (or a path) runs everything against another runtime.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PREFIX = "pyoci-it"
IMAGE = f"localhost/{PREFIX}-busybox:latest"
PAUSE_IMAGE = f"localhost/{PREFIX}-pause:latest"
# Cgroup parents, one per engine, so leftovers can be told apart and removed.
PODMAN_CGROUP = f"/{PREFIX}-podman"
CTR_NAMESPACE = f"{PREFIX}-ctr"  # ctr puts a task in /<namespace>/<id>
CRI_CGROUP = f"/{PREFIX}-cri"
CGROUP_PARENTS = (PODMAN_CGROUP, f"/{CTR_NAMESPACE}", CRI_CGROUP)
# What the host allows without CAP_SYS_RESOURCE (podman's own default, 1048576, does not fit).
ULIMITS = ("nofile=1024:1024", "nproc=4096:4096")
TIMEOUT = 60


def runtime_binary(name: str | None = None) -> str:
    name = name or os.environ.get("ENGINE_RUNTIME", "pyoci")
    if name == "pyoci":
        return str(REPO / ".venv" / "bin" / "pyoci")
    return shutil.which(name) or name


def runtime_name(binary: str) -> str:
    return os.path.basename(binary)


def default_state_root(binary: str) -> Path:
    """Where the runtime keeps state when podman calls it without --root."""
    return Path("/run") / runtime_name(binary)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.strip()


def run_cmd(argv: list[str], env: dict[str, str] | None = None, timeout: float = TIMEOUT,
            input: str | None = None, cwd: Path | None = None) -> Result:
    """Output through files: a detached container or a conmon may keep a pipe open long
    after the command returned. `cwd`: conmon drops files (an `oom` marker) in its
    working directory, which must be the engine's temp dir, not the checkout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        # The timeout is a watchdog thread, not subprocess's own: with a timeout,
        # subprocess polls in sleeps of up to 50 ms, and bench/engines.py would time those.
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            proc.kill()
        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            proc.communicate(input.encode() if input is not None else None)
        finally:
            watchdog.cancel()
        if expired:
            raise subprocess.TimeoutExpired(argv, timeout)
        out.seek(0)
        err.seek(0)
        return Result(proc.returncode, out.read(), err.read())


def new_name() -> str:
    return f"{PREFIX}-{uuid.uuid4().hex[:10]}"


# --- the image ---------------------------------------------------------------------------

def busybox_rootfs(dest: Path) -> Path:
    """A busybox root filesystem from the host's busybox-static."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "var"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", dest / "bin" / "busybox")
    applets = run_cmd(["/bin/busybox", "--list"]).stdout.split()
    for applet in applets:
        link = dest / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    return dest


# --- host inspection, for cleanup and the tests' leftover checks ----------------------------

def mounts_under(prefix: Path) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4]
            if target == str(prefix) or target.startswith(f"{prefix}/"):
                found.append(target)
    return found


def unmount_under(prefix: Path) -> None:
    # Deepest first, lazily: a mount can still be busy while its last process dies.
    for target in sorted(set(mounts_under(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], stderr=subprocess.DEVNULL)


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (engine daemons, shims, conmons)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)]
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory at or below `parent`, in all hierarchies, deepest first."""
    found = []
    for base in Path("/sys/fs/cgroup").iterdir():
        top = base / parent.strip("/")
        if top.is_dir():
            found += [d for d in top.rglob("*") if d.is_dir()] + [top]
    return sorted(found, key=lambda d: len(d.parts), reverse=True)


def container_cgroups(parent: str, ignore: tuple[str, ...] = ("conmon",)) -> list[str]:
    """Container cgroups left below an engine's parent (podman's conmon cgroup is the
    engine's own and stays until teardown)."""
    return sorted({str(d) for d in cgroup_dirs(parent)
                   if d.name not in ignore and d.parent.name != "conmon"
                   and d.name != parent.strip("/")})


def remove_cgroups(parent: str) -> None:
    for d in cgroup_dirs(parent):
        try:
            kill_pids([int(p) for p in (d / "cgroup.procs").read_text().split()])
        except OSError:
            pass
        frozen = d / "freezer.state"
        if frozen.exists():
            try:
                frozen.write_text("THAWED")
            except OSError:
                pass
        for _ in range(100):
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.02)


# --- podman ------------------------------------------------------------------------------

@dataclass
class Podman:
    """podman with storage, locks, events and temp files under `workdir`; every call goes
    through `--runtime <binary>`."""

    workdir: Path
    runtime: str
    env: dict[str, str] = field(default_factory=dict)

    def setup(self) -> "Podman":
        w = self.workdir
        for d in ("root", "runroot", "tmp", "net", "volumes"):
            (w / d).mkdir(parents=True, exist_ok=True)
        name = runtime_name(self.runtime)
        # pyoci and runc side by side, so one storage serves both (bench/engines.py).
        binaries = {runtime_name(b): b for b in (runtime_binary("pyoci"), runtime_binary("runc"))}
        binaries[name] = self.runtime
        runtimes = "\n".join(f'{n} = ["{b}"]' for n, b in binaries.items())
        ulimits = ", ".join(f'"{u}"' for u in ULIMITS)
        (w / "containers.conf").write_text(f"""\
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = [{ulimits}]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{w}/events.log"
lock_type = "file"
tmp_dir = "{w}/tmp"
volume_path = "{w}/volumes"
conmon_path = ["/usr/bin/conmon"]
runtime = "{name}"
# podman passes --log-format=json --log only to the runtimes named here.
runtime_supports_json = ["pyoci", "runc", "crun"]

[engine.runtimes]
{runtimes}

[network]
network_config_dir = "{w}/net"
""")
        (w / "storage.conf").write_text(f"""\
[storage]
driver = "overlay"
graphroot = "{w}/root"
runroot = "{w}/runroot"
""")
        self.env = {**os.environ, "CONTAINERS_CONF": str(w / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(w / "storage.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(w / "registries.conf")}
        (w / "registries.conf").write_text("unqualified-search-registries = []\n")
        return self

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--runtime", self.runtime, "--root", str(self.workdir / "root"),
                "--runroot", str(self.workdir / "runroot"), *args]

    def __call__(self, *args: str, timeout: float = TIMEOUT, input: str | None = None) -> Result:
        return run_cmd(self.argv(*args), env=self.env, timeout=timeout, input=input,
                       cwd=self.workdir)

    def ok(self, *args: str, timeout: float = TIMEOUT) -> str:
        r = self(*args, timeout=timeout)
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.returncode} {r.stderr}"
        return r.out

    def run_flags(self) -> list[str]:
        return ["--network", "none", "--cgroup-parent", PODMAN_CGROUP]

    def build_images(self) -> None:
        rootfs = busybox_rootfs(self.workdir / "busybox-rootfs")
        tar = self.workdir / "busybox.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        self.ok("import", "--change", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        # The CRI sandbox ("pause") image: anything that sleeps for ever will do.
        self.ok("import", "--change", 'CMD ["/bin/sleep", "2147483647"]', str(tar), PAUSE_IMAGE)

    def save(self, image: str, dest: Path) -> Path:
        """docker-archive: `ctr images import` takes it and keeps the image's name."""
        self.ok("save", "--format", "docker-archive", "-o", str(dest), image)
        return dest

    def names(self) -> list[str]:
        r = self("ps", "-a", "--format", "{{.Names}}")
        return [n for n in r.stdout.split() if n.startswith(PREFIX)]

    def teardown(self) -> None:
        try:
            self("rm", "--all", "--force", "--time", "0", timeout=120)
        except subprocess.TimeoutExpired:
            pass
        conmons = pids_mentioning(str(self.workdir))
        kill_pids(conmons)
        wait_gone(conmons)
        unmount_under(self.workdir)
        remove_cgroups(PODMAN_CGROUP)


# --- containerd --------------------------------------------------------------------------

@dataclass
class Containerd:
    """A containerd of our own (config, root, state, socket under `workdir`), its CRI
    plugin's runtime handler `pyoci` calling `runtime` with the runc v2 shim."""

    workdir: Path
    runtime: str
    # Off: the CRI plugin asks for the sandbox's oomScoreAdj -998 as it is.
    restrict_oom_score_adj: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        """The runtime's --root for every task, set by both ctr and the CRI handler."""
        return self.workdir / "runtime-root"

    def config(self) -> str:
        w = self.workdir
        cri = '"io.containerd.grpc.v1.cri"'
        return f"""\
version = 2
root = "{w}/root"
state = "{w}/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"

[plugins.{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE the sandbox's oomScoreAdj -998 cannot be set: clamp it.
  restrict_oom_score_adj = {str(self.restrict_oom_score_adj).lower()}
  [plugins.{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "pyoci"
    [plugins.{cri}.containerd.runtimes.pyoci]
      runtime_type = "io.containerd.runc.v2"
      [plugins.{cri}.containerd.runtimes.pyoci.options]
        BinaryName = "{self.runtime}"
        Root = "{self.runc_root}"
        SystemdCgroup = false
  [plugins.{cri}.cni]
    bin_dir = "{w}/cni/bin"
    conf_dir = "{w}/cni/conf"
"""

    def start(self) -> "Containerd":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.toml").write_text(self.config())
        log = open(self.workdir / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.workdir / "config.toml")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while self.ctr("version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start: "
                                   + (self.workdir / "containerd.log").read_text()[-2000:])
            time.sleep(0.1)
        return self

    def ctr(self, *args: str, namespace: str = CTR_NAMESPACE, timeout: float = TIMEOUT,
            input: str | None = None) -> Result:
        return run_cmd(["ctr", "--address", str(self.socket), "--namespace", namespace, *args],
                       timeout=timeout, input=input)

    def run_flags(self, binary: str | None = None) -> list[str]:
        return ["--runc-binary", binary or self.runtime, "--runc-root", str(self.runc_root),
                "--fifo-dir", str(self.workdir / "fifo")]

    def import_image(self, archive: Path, namespace: str) -> None:
        r = self.ctr("images", "import", str(archive), namespace=namespace, timeout=120)
        assert r.returncode == 0, r.stderr

    def remove_all(self, namespace: str) -> None:
        """Kill and delete every task and container of a namespace."""
        for task in self.ctr("tasks", "ls", "-q", namespace=namespace).stdout.split():
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, namespace=namespace)
            self.ctr("tasks", "delete", "-f", task, namespace=namespace)
        for c in self.ctr("containers", "ls", "-q", namespace=namespace).stdout.split():
            self.ctr("containers", "delete", c, namespace=namespace)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Shims outlive their daemon by design: they are found by our socket's path.
        shims = pids_mentioning(str(self.workdir))
        kill_pids(shims)
        wait_gone(shims)
        unmount_under(self.workdir)
        for parent in (f"/{CTR_NAMESPACE}", CRI_CGROUP):
            remove_cgroups(parent)


# --- one temp dir for everything --------------------------------------------------------------

# Two host paths no setting moves: containers/image's blob-info cache in
# /var/lib/containers, and the shim sockets' dir /run/containerd/s (containerd 1.6).
HARDWIRED_ENGINE_PATHS = ("/var/lib/containers", "/run/containerd")


@contextlib.contextmanager
def engine_workdir() -> Iterator[Path]:
    """A fresh /tmp/pyoci-engines-* dir, removed afterwards with whatever is mounted in
    it, and the hard-wired host paths removed again if they were made meanwhile."""
    made_here = [p for p in HARDWIRED_ENGINE_PATHS if not Path(p).exists()]
    path = Path(tempfile.mkdtemp(prefix="pyoci-engines-", dir="/tmp"))
    try:
        yield path
    finally:
        unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)
        for p in made_here:
            shutil.rmtree(p, ignore_errors=True)


def pyoci_state_ids(root: Path) -> list[str]:
    try:
        return sorted(os.listdir(root))
    except FileNotFoundError:
        return []


def load_json(text: str) -> Any:
    return json.loads(text)
