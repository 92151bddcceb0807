"""config.json as typed objects.

`load_spec` turns the decoded JSON into the dataclasses below and refuses a value of
the wrong shape with a ConfigError naming its JSON path. It is the check every
`create` pays for, so it is plain Python: the full JSON Schema pass (pyoci.validate)
is for `pyoci validate` and for explaining a config this loader refused.

`linux.resources`, `linux.intelRdt` and `linux.netDevices` stay JSON-shaped: the
cgroup code reads resources in the same form `update --resources` receives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

from .errors import ConfigError

# The spec's classes are records built once per create and then only read. Each
# generated method (__eq__, __repr__, __match_args__) is source that @dataclass
# compiles on every pyoci start: leaving them out saves ~5 ms of each create.
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


@dataclass(eq=False, repr=False, match_args=False)
class Root:
    """`root`: the container's root filesystem, relative to the bundle or absolute."""
    path: str
    readonly: bool = False


@dataclass(eq=False, repr=False, match_args=False)
class IdMapping:
    """One range of a uid or gid map: `size` ids from `container_id` onto `host_id`."""
    container_id: int
    host_id: int
    size: int


@dataclass(eq=False, repr=False, match_args=False)
class Mount:
    """One `mounts[]` entry, mounted in order inside the rootfs."""
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = field(default_factory=list)
    uid_mappings: list[IdMapping] = field(default_factory=list)
    gid_mappings: list[IdMapping] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class User:
    """`process.user`: who the program runs as."""
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)
    username: str | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Rlimit:
    """One `process.rlimits[]` entry (`type` is an RLIMIT_* name)."""
    type: str
    hard: int
    soft: int


@dataclass(eq=False, repr=False, match_args=False)
class Capabilities:
    """`process.capabilities`: the five sets; None means the set is absent."""
    bounding: list[str] | None = None
    effective: list[str] | None = None
    inheritable: list[str] | None = None
    permitted: list[str] | None = None
    ambient: list[str] | None = None


@dataclass(eq=False, repr=False, match_args=False)
class ConsoleSize:
    """`process.consoleSize`, applied to the pty."""
    height: int
    width: int


@dataclass(eq=False, repr=False, match_args=False)
class Scheduler:
    """`process.scheduler`: the sched_setattr(2) policy and its parameters."""
    policy: str
    nice: int = 0
    priority: int = 0
    flags: list[str] = field(default_factory=list)
    runtime: int = 0
    deadline: int = 0
    period: int = 0


@dataclass(eq=False, repr=False, match_args=False)
class IOPriority:
    """`process.ioPriority` (`class` in JSON; `klass` here, `class` being a keyword)."""
    klass: str
    priority: int = 0


@dataclass(eq=False, repr=False, match_args=False)
class CPUAffinity:
    """`process.execCPUAffinity`: cpu lists before and after execve."""
    initial: str | None = None
    final: str | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Process:
    """`process`: what the container runs, as whom, with which attributes."""
    args: list[str]
    cwd: str
    env: list[str] = field(default_factory=list)
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    selinux_label: str | None = None
    oom_score_adj: int | None = None
    scheduler: Scheduler | None = None
    io_priority: IOPriority | None = None
    exec_cpu_affinity: CPUAffinity | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Hook:
    """One hook: a host program run with the container's state on stdin."""
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] | None = None
    timeout: int | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Hooks:
    """`hooks`: the six lists, each run at its moment of the lifecycle."""
    prestart: list[Hook] = field(default_factory=list)
    create_runtime: list[Hook] = field(default_factory=list)
    create_container: list[Hook] = field(default_factory=list)
    start_container: list[Hook] = field(default_factory=list)
    poststart: list[Hook] = field(default_factory=list)
    poststop: list[Hook] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class Namespace:
    """One `linux.namespaces[]` entry: new when `path` is None, joined otherwise."""
    type: str
    path: str | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Device:
    """One `linux.devices[]` entry, created in the container's /dev."""
    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(eq=False, repr=False, match_args=False)
class SeccompArg:
    """An argument condition of a seccomp rule."""
    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(eq=False, repr=False, match_args=False)
class SeccompRule:
    """One `linux.seccomp.syscalls[]` rule."""
    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[SeccompArg] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class Seccomp:
    """`linux.seccomp`: the filter the program runs under."""
    default_action: str
    default_errno_ret: int | None = None
    architectures: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[SeccompRule] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class Personality:
    """`linux.personality`: the execution domain."""
    domain: str
    flags: list[str] = field(default_factory=list)


@dataclass(eq=False, repr=False, match_args=False)
class TimeOffset:
    """One clock's offset in a new time namespace."""
    secs: int = 0
    nanosecs: int = 0


@dataclass(eq=False, repr=False, match_args=False)
class Linux:
    """`linux`: namespaces, id maps, devices, cgroups and the Linux security settings."""
    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IdMapping] = field(default_factory=list)
    gid_mappings: list[IdMapping] = field(default_factory=list)
    time_offsets: dict[str, TimeOffset] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    cgroups_path: str | None = None
    resources: dict[str, Any] | None = None
    sysctl: dict[str, str] = field(default_factory=dict)
    seccomp: Seccomp | None = None
    rootfs_propagation: str | None = None
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    mount_label: str | None = None
    personality: Personality | None = None
    intel_rdt: dict[str, Any] | None = None
    net_devices: dict[str, Any] | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


@dataclass(eq=False, repr=False, match_args=False)
class Spec:
    """A whole config.json."""
    oci_version: str
    root: Root
    process: Process | None = None
    mounts: list[Mount] = field(default_factory=list)
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks = field(default_factory=Hooks)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux = field(default_factory=Linux)


# --- the loader -------------------------------------------------------------------
# Each reader takes the enclosing object, the key and the JSON path of that object,
# so every refusal names the exact field (`linux.namespaces[2].type: ...`).

_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object",
               list: "an array"}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: Any, kind: type, path: str) -> Any:
    # bool is an int subclass in Python; JSON keeps them apart.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: must be {_TYPE_NAMES[kind]}")
    return value


def _get(obj: dict, key: str, kind: type, path: str, default: Any = None,
         required: bool = False) -> Any:
    if key not in obj or obj[key] is None:
        if required:
            raise ConfigError(f"{_join(path, key)}: is required")
        return default
    return _check(obj[key], kind, _join(path, key))


def _objects(obj: dict, key: str, path: str) -> list[tuple[dict, str]]:
    items = _get(obj, key, list, path, [])
    where = _join(path, key)
    return [(_check(item, dict, f"{where}[{i}]"), f"{where}[{i}]") for i, item in enumerate(items)]


def _strings(obj: dict, key: str, path: str, default: Any = None) -> Any:
    items = _get(obj, key, list, path)
    if items is None:
        return default
    where = _join(path, key)
    return [_check(item, str, f"{where}[{i}]") for i, item in enumerate(items)]


def _string_map(obj: dict, key: str, path: str) -> dict[str, str]:
    mapping = _get(obj, key, dict, path, {})
    where = _join(path, key)
    return {k: _check(v, str, f"{where}.{k}") for k, v in mapping.items()}


def _id_mappings(obj: dict, key: str, path: str) -> list[IdMapping]:
    return [IdMapping(container_id=_get(m, "containerID", int, p, required=True),
                      host_id=_get(m, "hostID", int, p, required=True),
                      size=_get(m, "size", int, p, required=True))
            for m, p in _objects(obj, key, path)]


def _mount(m: dict, p: str) -> Mount:
    return Mount(destination=_get(m, "destination", str, p, required=True),
                 type=_get(m, "type", str, p),
                 source=_get(m, "source", str, p),
                 options=_strings(m, "options", p, []),
                 uid_mappings=_id_mappings(m, "uidMappings", p),
                 gid_mappings=_id_mappings(m, "gidMappings", p))


def _process(d: dict, p: str) -> Process:
    args = _strings(d, "args", p, [])
    if not args:
        raise ConfigError(f"{p}.args: must contain at least 1 item")
    user_obj = _get(d, "user", dict, p, {})
    up = _join(p, "user")
    user = User(uid=_get(user_obj, "uid", int, up, 0),
                gid=_get(user_obj, "gid", int, up, 0),
                umask=_get(user_obj, "umask", int, up),
                additional_gids=[_check(g, int, f"{up}.additionalGids[{i}]")
                                 for i, g in enumerate(_get(user_obj, "additionalGids", list, up, []))],
                username=_get(user_obj, "username", str, up))
    caps = None
    if (c := _get(d, "capabilities", dict, p)) is not None:
        cp = _join(p, "capabilities")
        caps = Capabilities(**{name: _strings(c, name, cp)
                               for name in ("bounding", "effective", "inheritable", "permitted", "ambient")})
    console = None
    if (cs := _get(d, "consoleSize", dict, p)) is not None:
        csp = _join(p, "consoleSize")
        console = ConsoleSize(height=_get(cs, "height", int, csp, required=True),
                              width=_get(cs, "width", int, csp, required=True))
    scheduler = None
    if (s := _get(d, "scheduler", dict, p)) is not None:
        sp = _join(p, "scheduler")
        scheduler = Scheduler(policy=_get(s, "policy", str, sp, required=True),
                              nice=_get(s, "nice", int, sp, 0), priority=_get(s, "priority", int, sp, 0),
                              flags=_strings(s, "flags", sp, []), runtime=_get(s, "runtime", int, sp, 0),
                              deadline=_get(s, "deadline", int, sp, 0), period=_get(s, "period", int, sp, 0))
    io_priority = None
    if (io := _get(d, "ioPriority", dict, p)) is not None:
        iop = _join(p, "ioPriority")
        io_priority = IOPriority(klass=_get(io, "class", str, iop, required=True),
                                 priority=_get(io, "priority", int, iop, 0))
    affinity = None
    if (a := _get(d, "execCPUAffinity", dict, p)) is not None:
        ap = _join(p, "execCPUAffinity")
        affinity = CPUAffinity(initial=_get(a, "initial", str, ap), final=_get(a, "final", str, ap))
    return Process(
        args=args,
        cwd=_get(d, "cwd", str, p, required=True),
        env=_strings(d, "env", p, []),
        terminal=_get(d, "terminal", bool, p, False),
        console_size=console,
        user=user,
        capabilities=caps,
        rlimits=[Rlimit(type=_get(r, "type", str, rp, required=True),
                        hard=_get(r, "hard", int, rp, required=True),
                        soft=_get(r, "soft", int, rp, required=True))
                 for r, rp in _objects(d, "rlimits", p)],
        no_new_privileges=_get(d, "noNewPrivileges", bool, p, False),
        apparmor_profile=_get(d, "apparmorProfile", str, p),
        selinux_label=_get(d, "selinuxLabel", str, p),
        oom_score_adj=_get(d, "oomScoreAdj", int, p),
        scheduler=scheduler,
        io_priority=io_priority,
        exec_cpu_affinity=affinity,
    )


def load_process(d: Any, path: str = "process") -> Process:
    """A `process` object on its own: what `exec --process FILE` reads."""
    return _process(_check(d, dict, path), path)


def _hooks(d: dict, p: str) -> Hooks:
    def hook_list(key: str) -> list[Hook]:
        hooks = []
        for h, hp in _objects(d, key, p):
            timeout = _get(h, "timeout", int, hp)
            if timeout is not None and timeout < 1:
                raise ConfigError(f"{hp}.timeout: must be at least 1")
            hooks.append(Hook(path=_get(h, "path", str, hp, required=True),
                              args=_strings(h, "args", hp, []),
                              env=_strings(h, "env", hp), timeout=timeout))
        return hooks
    return Hooks(prestart=hook_list("prestart"), create_runtime=hook_list("createRuntime"),
                 create_container=hook_list("createContainer"),
                 start_container=hook_list("startContainer"),
                 poststart=hook_list("poststart"), poststop=hook_list("poststop"))


def _seccomp(d: dict, p: str) -> Seccomp:
    rules = []
    for r, rp in _objects(d, "syscalls", p):
        rules.append(SeccompRule(
            names=_strings(r, "names", rp, []),
            action=_get(r, "action", str, rp, required=True),
            errno_ret=_get(r, "errnoRet", int, rp),
            args=[SeccompArg(index=_get(a, "index", int, ap, required=True),
                             value=_get(a, "value", int, ap, required=True),
                             value_two=_get(a, "valueTwo", int, ap, 0),
                             op=_get(a, "op", str, ap, required=True))
                  for a, ap in _objects(r, "args", rp)]))
    return Seccomp(default_action=_get(d, "defaultAction", str, p, required=True),
                   default_errno_ret=_get(d, "defaultErrnoRet", int, p),
                   architectures=_strings(d, "architectures", p, []),
                   flags=_strings(d, "flags", p, []),
                   listener_path=_get(d, "listenerPath", str, p),
                   listener_metadata=_get(d, "listenerMetadata", str, p),
                   syscalls=rules)


def _linux(d: dict, p: str) -> Linux:
    namespaces = []
    for n, np_ in _objects(d, "namespaces", p):
        ns_type = _get(n, "type", str, np_, required=True)
        if ns_type not in NAMESPACE_TYPES:
            raise ConfigError(f"{np_}.type: must be one of {', '.join(NAMESPACE_TYPES)}")
        namespaces.append(Namespace(type=ns_type, path=_get(n, "path", str, np_)))
    offsets = {}
    for clock, value in _get(d, "timeOffsets", dict, p, {}).items():
        op = f"{p}.timeOffsets.{clock}"
        _check(value, dict, op)
        offsets[clock] = TimeOffset(secs=_get(value, "secs", int, op, 0),
                                    nanosecs=_get(value, "nanosecs", int, op, 0))
    personality = None
    if (pe := _get(d, "personality", dict, p)) is not None:
        pp = _join(p, "personality")
        personality = Personality(domain=_get(pe, "domain", str, pp, required=True),
                                  flags=_strings(pe, "flags", pp, []))
    seccomp_obj = _get(d, "seccomp", dict, p)
    return Linux(
        namespaces=namespaces,
        uid_mappings=_id_mappings(d, "uidMappings", p),
        gid_mappings=_id_mappings(d, "gidMappings", p),
        time_offsets=offsets,
        devices=[Device(type=_get(v, "type", str, vp, required=True),
                        path=_get(v, "path", str, vp, required=True),
                        major=_get(v, "major", int, vp, 0), minor=_get(v, "minor", int, vp, 0),
                        file_mode=_get(v, "fileMode", int, vp), uid=_get(v, "uid", int, vp),
                        gid=_get(v, "gid", int, vp))
                 for v, vp in _objects(d, "devices", p)],
        cgroups_path=_get(d, "cgroupsPath", str, p),
        resources=_get(d, "resources", dict, p),
        sysctl=_string_map(d, "sysctl", p),
        seccomp=_seccomp(seccomp_obj, _join(p, "seccomp")) if seccomp_obj is not None else None,
        rootfs_propagation=_get(d, "rootfsPropagation", str, p),
        masked_paths=_strings(d, "maskedPaths", p, []),
        readonly_paths=_strings(d, "readonlyPaths", p, []),
        mount_label=_get(d, "mountLabel", str, p),
        personality=personality,
        intel_rdt=_get(d, "intelRdt", dict, p),
        net_devices=_get(d, "netDevices", dict, p),
    )


def load_spec(doc: Any) -> Spec:
    """Build a Spec from decoded config.json, or raise ConfigError naming the field."""
    doc = _check(doc, dict, "(root)")
    root = _get(doc, "root", dict, "", required=True)
    process = _get(doc, "process", dict, "")
    hooks = _get(doc, "hooks", dict, "")
    linux = _get(doc, "linux", dict, "")
    return Spec(
        oci_version=_get(doc, "ociVersion", str, "", required=True),
        root=Root(path=_get(root, "path", str, "root", required=True),
                  readonly=_get(root, "readonly", bool, "root", False)),
        process=_process(process, "process") if process is not None else None,
        mounts=[_mount(m, mp) for m, mp in _objects(doc, "mounts", "")],
        hostname=_get(doc, "hostname", str, ""),
        domainname=_get(doc, "domainname", str, ""),
        hooks=_hooks(hooks, "hooks") if hooks is not None else Hooks(),
        annotations=_string_map(doc, "annotations", ""),
        linux=_linux(linux, "linux") if linux is not None else Linux(),
    )
