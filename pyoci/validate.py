"""Checks a bundle's config.json, and pyoci's own JSON output, before anything acts on them.

Two layers:
- `schema_errors` checks a document's shape against schema/<name>.schema.json. It needs
  jsonschema, which costs ~100 ms to import, so it is imported only inside that function.
- `semantic_errors` checks what a schema cannot say (paths that must exist or be absolute,
  namespaces a setting depends on, names the kernel knows). It is stdlib only and cheap
  because `pyoci create` runs it every time.

Every message reads `<json path>: <problem>`, e.g. `process.args: must contain at least 1 item`;
`(root)` stands for the whole document.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

def schema_directory() -> "Path":
    # pathlib costs milliseconds to import: only the schema pass (never `create`) needs it.
    from pathlib import Path
    return Path(__file__).resolve().parent.parent / "schema"

# Index = capability number in linux/capability.h (0 .. CAP_LAST_CAP = 40).
KNOWN_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# Index = resource number in asm-generic/resource.h.
KNOWN_RLIMITS: tuple[str, ...] = (
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
)

CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")
ROOTFS_PROPAGATIONS = ("private", "shared", "slave", "unbindable")
# Only these seccomp actions carry an errno (SECCOMP_RET_ERRNO / SECCOMP_RET_TRACE data).
ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
REALTIME_POLICIES = ("SCHED_FIFO", "SCHED_RR")
IFNAMSIZ = 16

PathPart = str | int
JsonPath = tuple[PathPart, ...]


class SchemaUnavailableError(RuntimeError):
    """The schema files pyoci validates against cannot be found or read."""


# ---------------------------------------------------------------------------
# Paths and messages

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_path(path: JsonPath) -> str:
    """`("linux", "namespaces", 2, "type")` -> `linux.namespaces[2].type`."""
    if not path:
        return "(root)"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            # Keys such as sysctl names contain dots; quote them so the path stays unambiguous.
            text += f"[{json.dumps(part)}]"
    return text


def _path_sort_key(path: JsonPath) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with config.json, at a JSON path."""

    path: JsonPath
    text: str

    def sort_key(self) -> tuple[Any, ...]:
        return (_path_sort_key(self.path), self.text)

    def render(self) -> str:
        return f"{render_path(self.path)}: {self.text}"


def _render_all(problems: Iterable[Problem]) -> list[str]:
    unique = {(p.path, p.text): p for p in problems}
    return [p.render() for p in sorted(unique.values(), key=Problem.sort_key)]


# ---------------------------------------------------------------------------
# Schema validation

def _load_schema_documents() -> dict[str, dict[str, Any]]:
    schema_dir = schema_directory()
    if not schema_dir.is_dir():
        raise SchemaUnavailableError(f"schema directory {schema_dir} is missing; "
                                     "pyoci must run from its source tree (pip install -e)")
    documents: dict[str, dict[str, Any]] = {}
    for file in sorted(schema_dir.glob("*.schema.json")):
        try:
            documents[file.name.removesuffix(".schema.json")] = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise SchemaUnavailableError(f"cannot load schema {file}: {exc}") from exc
    return documents


def _validator(schema: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    documents = _load_schema_documents()
    if schema not in documents:
        known = ", ".join(sorted(documents)) or "none"
        raise SchemaUnavailableError(
            f"no schema named {schema!r} in {schema_directory()} (available: {known})")
    # The schemas refer to each other by $id (features and state reuse config's $defs).
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values())
    return Draft202012Validator(documents[schema], registry=registry)


# runc (Go) reads a JSON null as "not set", and Go engines write `"args": null` for empty
# lists; config.json is read the same way here and in pyoci/spec.py. pyoci's own output
# (state, features) must not contain nulls, so it is validated as written.
_NULL_MEANS_ABSENT = frozenset({"config"})


def _without_null_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_null_members(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_null_members(item) for item in value]
    return value


def _schema_problems(document: object, schema: str) -> list[Problem]:
    if schema in _NULL_MEANS_ABSENT:
        document = _without_null_members(document)
    problems: list[Problem] = []
    for error in _validator(schema).iter_errors(document):
        problems.extend(_describe(error))
    return problems


def schema_errors(document: object, schema: str = "config") -> list[str]:
    """Validate `document` against schema/<schema>.schema.json; one message per violation."""
    return _render_all(_schema_problems(document, schema))


_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "object": "an object", "array": "an array", "boolean": "a boolean", "null": "null",
}


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _only_requires(branches: Any) -> list[str] | None:
    """Names required by an anyOf whose branches each just require one property."""
    names = []
    for branch in branches if isinstance(branches, list) else []:
        if not (isinstance(branch, dict) and set(branch) == {"required"}
                and len(branch["required"]) == 1):
            return None
        names.append(branch["required"][0])
    return names or None


def _describe(error: ValidationError) -> list[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance

    if kind in ("anyOf", "oneOf"):
        required_one = _only_requires(value)
        if required_one:
            return [Problem(path, "must set at least one of " + ", ".join(required_one))]
        if error.context:
            from jsonschema.exceptions import best_match
            best = best_match(error.context)
            if best is not None:
                return _describe(best)
        return [Problem(path, "does not match any allowed form")]

    if "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key at the object's path with the key as instance.
        rule = _rule_text(error)
        return [Problem(path, f"property name {json.dumps(instance)} {rule}")]

    if kind == "required" and isinstance(instance, dict):
        return [Problem(path + (name,), "is required")
                for name in value if name not in instance]

    if kind == "dependentRequired" and isinstance(instance, dict):
        return [Problem(path + (needed,), f"is required when {present} is set")
                for present, needs in value.items() if present in instance
                for needed in needs if needed not in instance]

    if kind == "additionalProperties" and value is False and isinstance(instance, dict):
        declared = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        return [Problem(path + (name,), "is not an allowed property")
                for name in instance
                if name not in declared and not any(p.search(name) for p in patterns)]

    return [Problem(path, _rule_text(error))]


def _rule_text(error: ValidationError) -> str:
    """The broken rule in plain words, for validators that concern the value itself."""
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    title = error.schema.get("title") if isinstance(error.schema, dict) else None

    if kind == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if kind == "enum":
        return "must be one of " + ", ".join(_plain(v) for v in value)
    if kind == "const":
        return f"must be {_plain(value)}"
    if kind == "minItems":
        return f"must contain at least {_plural(value, 'item')}"
    if kind == "maxItems":
        return f"must contain at most {_plural(value, 'item')}"
    if kind == "uniqueItems":
        return "must not contain duplicate items"
    if kind == "minLength":
        return "must not be empty" if value == 1 else \
            f"must be at least {_plural(value, 'character')} long"
    if kind == "maxLength":
        return f"must be at most {_plural(value, 'character')} long"
    if kind == "minProperties":
        return f"must have at least {_plural(value, 'property')}"
    if kind == "maxProperties":
        return f"must have at most {_plural(value, 'property')}"
    if kind in ("pattern", "format"):
        wanted = title or (f"a valid {value}" if kind == "format" else None)
        got = json.dumps(instance)
        if wanted:
            return f"must be {wanted} (got {got})"
        return f"must match the pattern {value} (got {got})"
    if kind == "minimum":
        return f"must be at least {value}"
    if kind == "maximum":
        return f"must be at most {value}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {value}"
    if kind == "exclusiveMaximum":
        return f"must be less than {value}"
    if kind == "multipleOf":
        return f"must be a multiple of {value}"
    if kind == "not":
        return "is not allowed in this form"
    if kind is None or error.schema is False:
        return "is not allowed"
    return error.message


# ---------------------------------------------------------------------------
# Semantic checks. Each takes the raw config (already parsed JSON, possibly of the wrong
# shape) and yields Problems; none may raise on unexpected types.

def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class NamespaceEntry:
    """First linux.namespaces entry of one type."""
    index: int
    path: str | None  # None: the runtime creates a new namespace

    @property
    def is_new(self) -> bool:
        return self.path is None


def _namespaces(config: dict[str, Any]) -> dict[str, NamespaceEntry]:
    found: dict[str, NamespaceEntry] = {}
    for index, entry in enumerate(_items(_obj(config.get("linux")).get("namespaces"))):
        kind = _obj(entry).get("type")
        if isinstance(kind, str) and kind not in found:
            found[kind] = NamespaceEntry(index, _nonempty_str(_obj(entry).get("path")))
    return found


def _absolute(path: JsonPath, value: Any) -> Iterator[Problem]:
    if isinstance(value, str) and value and not value.startswith("/"):
        yield Problem(path, f"must be an absolute path (got {json.dumps(value)})")


def check_root(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    path = _obj(config.get("root")).get("path")
    if not isinstance(path, str) or not path:
        return
    rootfs = os.path.join(bundle, path)
    if not os.path.exists(rootfs):
        yield Problem(("root", "path"), f"{rootfs} does not exist")
    elif not os.path.isdir(rootfs):
        yield Problem(("root", "path"), f"{rootfs} is not a directory")


def check_duplicate_namespaces(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, entry in enumerate(_items(_obj(config.get("linux")).get("namespaces"))):
        kind = _obj(entry).get("type")
        if not isinstance(kind, str):
            continue
        if kind in first:
            yield Problem(("linux", "namespaces", index, "type"),
                          f"duplicate namespace type {kind} "
                          f"(first at linux.namespaces[{first[kind]}])")
        else:
            first[kind] = index


def check_namespace_paths(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    for index, entry in enumerate(_items(_obj(config.get("linux")).get("namespaces"))):
        yield from _absolute(("linux", "namespaces", index, "path"), _obj(entry).get("path"))


def check_user_namespace_mappings(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    # runc refuses both a new user namespace without mappings and mappings without one.
    linux = _obj(config.get("linux"))
    user = _namespaces(config).get("user")
    for key in ("uidMappings", "gidMappings"):
        has_mappings = bool(_items(linux.get(key)))
        if user is not None and user.is_new and not has_mappings:
            yield Problem(("linux", key), "is required when a new user namespace is created")
        if user is None and has_mappings:
            yield Problem(("linux", key), "is set, but linux.namespaces has no user namespace")


# SemVer 2.0.0 (config.md: ociVersion "MUST be in SemVer v2.0.0 format").
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?")


def check_oci_version(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    version = config.get("ociVersion")
    if isinstance(version, str) and not _SEMVER.fullmatch(version):
        yield Problem(("ociVersion",), f"must be a SemVer 2.0.0 version such as 1.3.0 (got {json.dumps(version)})")


def check_process_cwd(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    yield from _absolute(("process", "cwd"), _obj(config.get("process")).get("cwd"))


def check_process_args(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    process = config.get("process")
    if isinstance(process, dict) and not _items(process.get("args")):
        yield Problem(("process", "args"), "must contain at least 1 item")


def check_idmap_mounts(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    # An id-mapped mount takes its mapping from the mount or else from the container's
    # user namespace; with neither, the spec requires an error.
    has_userns = "user" in _namespaces(config)
    for index, mount in enumerate(_items(config.get("mounts"))):
        mount = _obj(mount)
        options = [o for o in _items(mount.get("options")) if o in ("idmap", "ridmap")]
        has_mappings = bool(_items(mount.get("uidMappings")) or _items(mount.get("gidMappings")))
        if options and not has_mappings and not has_userns:
            yield Problem(("mounts", index, "options"),
                          f"{options[0]} needs uidMappings/gidMappings on the mount "
                          "or a user namespace")


def check_hook_paths(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    hooks = _obj(config.get("hooks"))
    for kind in HOOK_KINDS:
        for index, hook in enumerate(_items(hooks.get(kind))):
            yield from _absolute(("hooks", kind, index, "path"), _obj(hook).get("path"))


def check_capabilities(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    known = frozenset(KNOWN_CAPABILITIES)
    sets = _obj(_obj(config.get("process")).get("capabilities"))
    for name in CAPABILITY_SETS:
        for index, cap in enumerate(_items(sets.get(name))):
            if isinstance(cap, str) and cap not in known:
                yield Problem(("process", "capabilities", name, index),
                              f"unknown capability {cap}")


def check_rlimits(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    known = frozenset(KNOWN_RLIMITS)
    first: dict[str, int] = {}
    for index, limit in enumerate(_items(_obj(config.get("process")).get("rlimits"))):
        limit = _obj(limit)
        kind = limit.get("type")
        if isinstance(kind, str):
            if kind not in known:
                yield Problem(("process", "rlimits", index, "type"),
                              f"unknown resource limit {kind}")
            elif kind in first:
                yield Problem(("process", "rlimits", index, "type"),
                              f"duplicate {kind} (first at process.rlimits[{first[kind]}])")
            else:
                first[kind] = index
        soft, hard = limit.get("soft"), limit.get("hard")
        if isinstance(soft, int) and isinstance(hard, int) and soft > hard:
            yield Problem(("process", "rlimits", index, "soft"),
                          f"{soft} is greater than the hard limit {hard}")


def check_uts_names(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    # Like runc: joining an existing UTS namespace by path also counts as private.
    if "uts" in _namespaces(config):
        return
    for key in ("hostname", "domainname"):
        if _nonempty_str(config.get(key)):
            yield Problem((key,), "cannot be set without a UTS namespace in linux.namespaces")


def check_rootfs_propagation(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    value = _obj(config.get("linux")).get("rootfsPropagation")
    if value is not None and value not in ROOTFS_PROPAGATIONS:
        yield Problem(("linux", "rootfsPropagation"),
                      "must be one of " + ", ".join(ROOTFS_PROPAGATIONS))


def check_time_offsets(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    if not _obj(_obj(config.get("linux")).get("timeOffsets")):
        return
    time_ns = _namespaces(config).get("time")
    if time_ns is None:
        yield Problem(("linux", "timeOffsets"),
                      "is set, but linux.namespaces has no time namespace")
    elif not time_ns.is_new:
        # The kernel fixes a time namespace's offsets before its first process enters it.
        yield Problem(("linux", "timeOffsets"),
                      "can only be applied to a new time namespace, not one joined by path")


def check_restricted_paths(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    linux = _obj(config.get("linux"))
    mount_ns = "mount" in _namespaces(config)
    for key in ("maskedPaths", "readonlyPaths"):
        paths = _items(linux.get(key))
        for index, value in enumerate(paths):
            yield from _absolute(("linux", key, index), value)
        if paths and not mount_ns:
            # Masking without a mount namespace of its own would mask the host's /proc.
            yield Problem(("linux", key), "needs a mount namespace in linux.namespaces")


def check_device_paths(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    for index, device in enumerate(_items(_obj(config.get("linux")).get("devices"))):
        yield from _absolute(("linux", "devices", index, "path"), _obj(device).get("path"))


def _is_host_network_namespace(path: str) -> bool:
    """True when `path` names the namespace pyoci itself runs in (runc refuses net.* then)."""
    try:
        target = os.stat(path)
        own = os.stat("/proc/self/ns/net")
    except OSError:
        return False  # joining will fail later with a precise error
    return (target.st_dev, target.st_ino) == (own.st_dev, own.st_ino)


def _sysctl_problem(key: str, namespaces: dict[str, NamespaceEntry]) -> str | None:
    name = key.replace("/", ".")
    if name.startswith(("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")):
        return None if "ipc" in namespaces else \
            "needs an IPC namespace in linux.namespaces (it would change the host's)"
    if name.startswith("net."):
        net = namespaces.get("network")
        if net is None:
            return "needs a network namespace in linux.namespaces (it would change the host's)"
        if net.path is not None and _is_host_network_namespace(net.path):
            return "is not allowed in the host's network namespace"
        return None
    if name == "kernel.domainname" and "uts" in namespaces:
        return None
    if name == "kernel.hostname" and "uts" in namespaces:
        return "conflicts with the hostname field; set hostname instead"
    if name.startswith("user.") and "user" in namespaces:
        return None
    return "is not namespaced; setting it would change the host"


def check_sysctl(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    namespaces = _namespaces(config)
    for key in _obj(_obj(config.get("linux")).get("sysctl")):
        problem = _sysctl_problem(key, namespaces)
        if problem:
            yield Problem(("linux", "sysctl", key), problem)


def check_seccomp_errno(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    seccomp = _obj(_obj(config.get("linux")).get("seccomp"))

    def mismatch(action: Any) -> str:
        return f"is only allowed with {' or '.join(ERRNO_ACTIONS)}, not {_plain(action)}"

    default = seccomp.get("defaultAction")
    if seccomp.get("defaultErrnoRet") is not None and isinstance(default, str) \
            and default not in ERRNO_ACTIONS:
        yield Problem(("linux", "seccomp", "defaultErrnoRet"), mismatch(default))
    for index, rule in enumerate(_items(seccomp.get("syscalls"))):
        rule = _obj(rule)
        action = rule.get("action")
        if rule.get("errnoRet") is not None and isinstance(action, str) \
                and action not in ERRNO_ACTIONS:
            yield Problem(("linux", "seccomp", "syscalls", index, "errnoRet"), mismatch(action))


def check_seccomp_notify(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    seccomp = _obj(_obj(config.get("linux")).get("seccomp"))
    if seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY":
        # Every syscall, including the runtime's own last ones, would wait for an agent.
        yield Problem(("linux", "seccomp", "defaultAction"),
                      "SCMP_ACT_NOTIFY cannot be the default action")
    notifies = any(_obj(rule).get("action") == "SCMP_ACT_NOTIFY"
                   for rule in _items(seccomp.get("syscalls")))
    if notifies and not _nonempty_str(seccomp.get("listenerPath")):
        yield Problem(("linux", "seccomp", "listenerPath"),
                      "is required when a rule uses SCMP_ACT_NOTIFY")


def check_scheduler(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    scheduler = _obj(_obj(config.get("process")).get("scheduler"))
    policy = scheduler.get("policy")
    if not isinstance(policy, str):
        return
    base = ("process", "scheduler")
    priority = scheduler.get("priority")
    if isinstance(priority, int) and policy in REALTIME_POLICIES and not 1 <= priority <= 99:
        yield Problem(base + ("priority",), f"must be between 1 and 99 for {policy}")
    if isinstance(priority, int) and priority != 0 and policy not in REALTIME_POLICIES:
        yield Problem(base + ("priority",),
                      f"must be 0 for {policy} (only SCHED_FIFO and SCHED_RR use it)")
    if policy != "SCHED_DEADLINE":
        for key in ("runtime", "deadline", "period"):
            if scheduler.get(key):
                yield Problem(base + (key,), f"is only used by SCHED_DEADLINE, not {policy}")


def _interface_name_problem(name: str) -> str | None:
    if not name or len(name) >= IFNAMSIZ:
        return f"{json.dumps(name)} is not a valid interface name (1 to {IFNAMSIZ - 1} characters)"
    if name in (".", "..") or any(c == "/" or c == ":" or c.isspace() for c in name):
        return f"{json.dumps(name)} is not a valid interface name"
    return None


def check_net_devices(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    devices = _obj(_obj(config.get("linux")).get("netDevices"))
    if not devices:
        return
    if "network" not in _namespaces(config):
        yield Problem(("linux", "netDevices"),
                      "needs a network namespace in linux.namespaces to move devices into")
    for host_name, device in devices.items():
        problem = _interface_name_problem(host_name)
        if problem:
            yield Problem(("linux", "netDevices", host_name), problem)
        new_name = _obj(device).get("name")
        if isinstance(new_name, str) and new_name:
            problem = _interface_name_problem(new_name)
            if problem:
                yield Problem(("linux", "netDevices", host_name, "name"), problem)


def check_memory_swap(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> Iterator[Problem]:
    memory = _obj(_obj(_obj(config.get("linux")).get("resources")).get("memory"))
    limit, swap = memory.get("limit"), memory.get("swap")
    # swap is memory+swap; -1 or 0 mean unlimited/unset.
    if isinstance(limit, int) and isinstance(swap, int) and limit > 0 and 0 < swap < limit:
        yield Problem(("linux", "resources", "memory", "swap"),
                      f"{swap} is below memory.limit {limit} (swap counts memory plus swap)")


SEMANTIC_CHECKS = (
    check_oci_version,
    check_root,
    check_duplicate_namespaces,
    check_namespace_paths,
    check_user_namespace_mappings,
    check_process_cwd,
    check_process_args,
    check_idmap_mounts,
    check_hook_paths,
    check_rlimits,
    check_uts_names,
    check_rootfs_propagation,
    check_time_offsets,
    check_restricted_paths,
    check_device_paths,
    check_sysctl,
    check_seccomp_errno,
    check_seccomp_notify,
    check_scheduler,
    check_net_devices,
    check_memory_swap,
)


# Problems `pyoci validate` reports but `create` only warns about: config.md asks
# runtimes to log capabilities they cannot map to the kernel as warnings, not to fail.
# (A relative mount destination is deprecated but valid: it is taken from "/".)
LINT_CHECKS = (check_capabilities,)


def _semantic_problems(config: dict[str, Any], bundle: "str | os.PathLike[str]",
                       checks: tuple = SEMANTIC_CHECKS) -> list[Problem]:
    return [problem for check in checks for problem in check(config, bundle)]


def semantic_errors(config: dict[str, Any], bundle: "str | os.PathLike[str]") -> list[str]:
    """Checks a schema cannot express; stdlib only, safe on configs of the wrong shape."""
    if not isinstance(config, dict):
        return []
    return _render_all(_semantic_problems(config, bundle))


# ---------------------------------------------------------------------------

def validate_bundle(bundle: "str | os.PathLike[str]") -> list[str]:
    """Every problem found in bundle/config.json, each prefixed `config.json: `."""
    from pathlib import Path
    file = Path(bundle) / "config.json"
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        return [f"config.json: cannot read: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return [f"config.json: invalid JSON: not UTF-8 at byte {exc.start}"]
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"config.json: invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"]

    problems = _schema_problems(config, "config")
    if isinstance(config, dict):
        # A field the schema already refused is not reported twice in other words.
        refused = {p.path for p in problems}
        problems.extend(p for p in _semantic_problems(config, bundle, SEMANTIC_CHECKS + LINT_CHECKS)
                        if p.path not in refused)
    return [f"config.json: {message}" for message in _render_all(problems)]
