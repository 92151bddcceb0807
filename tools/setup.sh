#!/bin/bash
# Installs everything pyoci needs on a fresh Debian 12 machine (run as root):
# system packages, a virtualenv in .venv with pyoci installed in it, the busybox
# example bundle, and /usr/local/bin/pyoci.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

packages=(python3 python3-venv python3-dev gcc libcap-dev libseccomp2 busybox-static
          runc iproute2 procps uidmap golang-github-containers-common strace)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's interpreter: it starts in half the time of a pyenv shim, and start-up is
# most of what a runtime call costs.
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
# PYTHONDONTWRITEBYTECODE may be set in the caller's environment: compile once here
# so no pyoci call ever compiles source on its start-up path.
.venv/bin/python -m compileall -q pyoci >/dev/null
ln -sf "$top/.venv/bin/pyoci" /usr/local/bin/pyoci

bash bundles/make-busybox-bundle.sh bundles/busybox >/dev/null
