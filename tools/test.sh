#!/bin/bash
# The project's test command (run as root): installs what a fresh Debian 12 machine
# lacks, then runs the unit and end-to-end tests, the conformance suite's own tests
# and its pyoci-vs-runc parity check, and the engine integration tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash tools/setup.sh
bash tests/integration/install-engines.sh

# A test must never block on a terminal prompt or inherit one.
exec .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests conformance/tests "$@" </dev/null
