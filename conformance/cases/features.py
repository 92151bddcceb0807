"""features.md: the Features structure printed by `features`."""

from __future__ import annotations

import json
import re

from conformance.context import Context
from conformance.outcome import CheckFailed, Skipped, expect
from conformance.registry import case

TOP_LEVEL = {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations",
             "potentiallyUnsafeConfigAnnotations"}
HOOK_NAMES = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


def features(ctx: Context) -> dict[str, object]:
    result = ctx.runtime.features()
    if not result.ok:
        # The operation itself is optional (features.md: a runtime MAY provide it).
        raise Skipped(f"the runtime provides no features operation: {result.describe()}")
    try:
        value = json.loads(result.stdout)
    except ValueError as error:
        raise CheckFailed(f"features printed no JSON: {error}") from None
    if not isinstance(value, dict):
        raise CheckFailed("features printed JSON that is not an object")
    return value


def _version_key(text: str) -> tuple[int, int, int, int]:
    match = SEMVER.fullmatch(text)
    assert match is not None
    # A pre-release sorts before the release of the same numbers.
    return int(match[1]), int(match[2]), int(match[3]), 0 if match[4] else 1


@case("features.versions", "ociVersionMin and ociVersionMax",
      "features.md#Specification version",
      "features reports SemVer ociVersionMin and ociVersionMax, with max not below min.")
def versions(ctx: Context) -> None:
    document = features(ctx)
    low, high = document.get("ociVersionMin"), document.get("ociVersionMax")
    expect(isinstance(low, str) and SEMVER.fullmatch(low) is not None, f"ociVersionMin {low!r}")
    expect(isinstance(high, str) and SEMVER.fullmatch(high) is not None, f"ociVersionMax {high!r}")
    expect(_version_key(high) >= _version_key(low), f"ociVersionMax {high} is below ociVersionMin {low}")  # type: ignore[arg-type]


@case("features.known-properties", "no properties outside the spec",
      "features.md#Specification version",
      "The Features structure holds only properties defined by the spec.")
def known_properties(ctx: Context) -> None:
    extra = sorted(set(features(ctx)) - TOP_LEVEL)
    expect(not extra, f"unknown top-level properties {extra}")


@case("features.shapes", "property types",
      "features.md",
      "hooks and mountOptions are string lists, annotations a string map, and no property is "
      "an empty value standing in for null.")
def shapes(ctx: Context) -> None:
    document = features(ctx)
    problems = []
    for key in ("hooks", "mountOptions", "potentiallyUnsafeConfigAnnotations"):
        value = document.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{key} is not a list of strings")
    annotations = document.get("annotations")
    if annotations is not None and not (isinstance(annotations, dict)
                                        and all(isinstance(k, str) and k and isinstance(v, str)
                                                for k, v in annotations.items())):
        problems.append("annotations is not a map of non-empty string keys to strings")
    unknown_hooks = set(document.get("hooks") or []) - HOOK_NAMES  # type: ignore[arg-type]
    if unknown_hooks:
        problems.append(f"hooks lists unknown names {sorted(unknown_hooks)}")
    expect(not problems, "; ".join(problems))


def _accepts_version(ctx: Context, key: str) -> None:
    version = features(ctx).get(key)
    if not isinstance(version, str):
        raise CheckFailed(f"{key} missing")
    bundle = ctx.bundle("echo ran")
    bundle.config["ociVersion"] = version
    output = ctx.run(bundle)
    expect(output.strip() == "ran", f"a container with ociVersion {version} printed {output!r}")


@case("features.accepts-min", "ociVersionMin is accepted in config.json",
      "features.md#Specification version",
      "A config whose ociVersion is the reported ociVersionMin runs.")
def accepts_min(ctx: Context) -> None:
    _accepts_version(ctx, "ociVersionMin")


@case("features.accepts-max", "ociVersionMax is accepted in config.json",
      "features.md#Specification version",
      "A config whose ociVersion is the reported ociVersionMax runs.")
def accepts_max(ctx: Context) -> None:
    _accepts_version(ctx, "ociVersionMax")


@case("features.hooks-supported", "every reported hook kind runs",
      "features.md#Hooks",
      "Each hook name listed by features is honoured when used in config.json.")
def hooks_supported(ctx: Context) -> None:
    from conformance.cases.hooks import add_hook
    names = features(ctx).get("hooks") or []
    bundle = ctx.bundle("true")
    files = None
    for name in names:  # type: ignore[union-attr]
        if name in HOOK_NAMES:
            files = add_hook(bundle, name)
    if files is None:
        return
    ctx.run(bundle)
    ctx.runtime.delete(bundle.cid)
    missing = sorted(set(names) & HOOK_NAMES - set(files.entries()))  # type: ignore[arg-type]
    expect(not missing, f"listed hooks that did not run: {missing}")


@case("features.namespaces-recognized", "every reported namespace type is accepted",
      "features-linux.md#Namespaces",
      "Each namespace type listed in linux.namespaces is accepted in config.json.")
def namespaces_recognized(ctx: Context) -> None:
    linux = features(ctx).get("linux") or {}
    kinds = linux.get("namespaces") or [] if isinstance(linux, dict) else []
    problems = []
    for kind in kinds:
        bundle = ctx.bundle("true")
        bundle.set_namespace(kind)
        if kind == "user":
            mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            bundle.linux["uidMappings"] = mapping
            bundle.linux["gidMappings"] = mapping
        result = ctx.try_create(bundle)
        if not result.ok:
            problems.append(f"{kind}: {result.describe()}")
    expect(not problems, "; ".join(problems))
