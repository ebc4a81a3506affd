#!/usr/bin/env bash
# Longer runs of the randomized tests than the suite affords (a nightly job):
# thousands of simulated seeds (store crashes, Raft, the PG cluster plain,
# on full disks, on rotting disks and erasure-coded) and real kill/restart
# runs (the store worker, OSDs and the monitor leader under checked load,
# OSDs under fio through basalt-nbd, replicated and 2+1), each about
# --runs times the suite's.
#   scripts/soak.sh [--seeds N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=2000 runs=500
while [ $# -gt 0 ]; do
	case "$1" in
	--seeds) seeds=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	*) echo "usage: scripts/soak.sh [--seeds N] [--runs N]" >&2; exit 2 ;;
	esac
done
scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build
STORE_SIM_SEEDS=$seeds build/tests/test_store_crash_sim
RAFT_SIM_SEEDS=$((seeds * 50)) build/tests/test_raft_sim
PG_SIM_SEEDS=$((seeds / 10)) PG_SIM_FULL_SEEDS=$((seeds / 20)) PG_SIM_ROT_SEEDS=$((seeds / 20)) \
	PG_SIM_FIRST=$RANDOM build/tests/test_pg_sim
PG_SIM_EC_SEEDS=$((seeds / 20)) PG_SIM_EC42_SEEDS=$((seeds / 20)) PG_SIM_EC_ROT_SEEDS=$((seeds / 20)) \
	build/tests/test_pg_sim ec
dev=$(mktemp /var/tmp/basalt-soak-XXXXXX.img)
trap 'rm -f "$dev"' EXIT
build/tests/fault/store_crash_tool drive --device "$dev" --osd build/basalt-osd \
	--runs "$runs" --ops 2000 --seed "$RANDOM" | tail -n 3
tests/fault/thrash.sh build --seconds "$((runs * 2))"
tests/fault/nbd_osd_kill.sh build --seconds "$((runs * 2))"
tests/fault/thrash.sh build --ec 2+1 --seconds "$((runs * 2))"
tests/fault/nbd_osd_kill.sh build --ec 2+1 --seconds "$((runs * 2))"
