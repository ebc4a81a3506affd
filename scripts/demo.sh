#!/usr/bin/env bash
# Basalt's main job, as far as it goes today: install dependencies, build,
# and show the pieces that work. At this stage (the foundation) that is the
# messenger: two processes on loopback authenticate with HMAC-SHA256 and
# exchange 20,000 checksummed messages with data segments, the server is
# killed and restarted mid-stream, and every message still comes back.
# Later stages extend this script: a local cluster, a volume, NBD, FUSE.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null
echo "   built: $(cd build && ls tests/integration/msgr_tool bench/msgr_bench | tr '\n' ' ')"

echo "== messenger: 20,000 messages between two processes, server killed mid-stream"
MSGR_TEST_COUNT=20000 tests/integration/msgr_two_process.sh build/tests/integration/msgr_tool 2>/dev/null \
	| grep -E '^(server|killing|drive:|badframes:|PASS)'

echo "== messenger round trips on loopback (1 s per row)"
build/bench/msgr_bench --seconds 1 --sizes 4096

cat <<'MSG'

Next: the OSD store, monitors, replication, volumes over NBD and FUSE
(see README.md). Run the whole test suite with scripts/test.sh.
MSG
