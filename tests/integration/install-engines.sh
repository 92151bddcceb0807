#!/bin/bash
# Installs the container engines the integration tests drive pyoci through:
# podman (with conmon and catatonit), containerd (ctr and the runc v2 shim), and
# grpcio in the project's venv for the tests' small CRI client. Idempotent: it only
# installs what is missing, and it never starts a service (the tests start
# containerd themselves, with state in temp dirs).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)

packages=(podman containerd conmon catatonit golang-github-containers-common runc busybox-static)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # No init system here: keep package scripts from trying to start containerd.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# The CRI client speaks gRPC with hand-written protobuf messages: only grpcio is needed.
if ! "$top/.venv/bin/python" -c 'import grpc' 2>/dev/null; then
    "$top/.venv/bin/pip" install -q --disable-pip-version-check 'grpcio>=1.51'
fi
