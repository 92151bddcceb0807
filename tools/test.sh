#!/bin/bash
# The project's test command (run as root): installs what a fresh Debian 12 machine
# lacks, then runs every suite. The end-to-end and engine tests run twice: against
# Debian's runc first (they assert the spec's and the engines' behaviour, not pyoci's),
# then, with the unit tests, the conformance suite (pyoci must pass what runc passes)
# and the engine integration, against pyoci.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash tools/setup.sh
bash tests/integration/install-engines.sh

# pyoci keeps compiled seccomp programs in /var/cache/pyoci; the tests use a cache of
# their own, removed at the end, so the host's is as they found it.
PYOCI_SECCOMP_CACHE=$(mktemp -d /tmp/seccomp-cache-of-tests.XXXXXX)
export PYOCI_SECCOMP_CACHE
trap 'rm -rf "$PYOCI_SECCOMP_CACHE"' EXIT

pytest=(.venv/bin/python -m pytest -q -p no:cacheprovider)
# stdin from /dev/null: a test must never block on a terminal or inherit one.
echo "== end-to-end and engine tests against runc"
RUNTIME=runc ENGINE_RUNTIME=runc "${pytest[@]}" tests/e2e tests/integration </dev/null
echo "== everything against pyoci"
"${pytest[@]}" tests conformance/tests "$@" </dev/null
