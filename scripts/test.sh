#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, builds, runs
# every test through ctest (unit, integration, fuzz smoke), then builds and
# runs the unit tests and the security-facing integration tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
# Exits non-zero on any failure.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the main build's tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/install-deps.sh

jobs=$(nproc)
step() { printf '\n== %s\n' "$*"; }

step "build (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build
step "tests (build/)"
# One more at a time than there are cores: the integration tests spend
# much of their time waiting on daemons (a 2-core run kept the cores 60%
# busy at -j2).
(cd build && ctest --output-on-failure -j "$((jobs + 1))" -LE fuzz)

[ "$quick" -eq 1 ] && exit 0

step "unit and simulation tests under ASan + UBSan (build-asan/)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBASALT_SANITIZE=ON >/dev/null
ninja -C build-asan
(cd build-asan && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	STORE_SIM_SEEDS=6 RAFT_SIM_SEEDS=1000 PG_SIM_SEEDS=3 PG_SIM_FULL_SEEDS=3 PG_SIM_ROT_SEEDS=2 PG_SIM_SNAP_SEEDS=2 \
	PG_SIM_EC_SEEDS=1 PG_SIM_EC42_SEEDS=0 PG_SIM_EC_ROT_SEEDS=1 \
	ctest --output-on-failure -j "$jobs" -L 'unit|sim')

step "integration tests under ASan + UBSan (build-asan/): keys, caps, secure links, NBD over TLS, the Docker plugin"
# Every process a test starts writes its sanitizer reports under $san_dir,
# so a report from a daemon (whose stderr goes to its log) fails the step.
# Memory errors and undefined behaviour, not leaks: daemons are killed, and
# start-up refusals return from main without freeing what they parsed.
san_dir=$(mktemp -d /tmp/basalt-sanitizers.XXXXXX)
(cd build-asan && \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$san_dir/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san_dir/ubsan \
	ctest --output-on-failure -j "$jobs" \
		-R '^(mon_auth|auth_caps|secure_links|nbd_tls|docker_plugin)$')
if [ -n "$(ls -A "$san_dir")" ]; then
	head -n 60 "$san_dir"/*
	echo "sanitizer reports above (from $san_dir)" >&2
	exit 1
fi
rm -rf "$san_dir"

step "fuzz smoke runs (build-fuzz/, clang + libFuzzer)"
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBASALT_FUZZ=ON -DBASALT_FUZZ_SECONDS="${BASALT_FUZZ_SECONDS:-10}" >/dev/null
ninja -C build-fuzz $(cd build-fuzz && ninja -t targets all | sed -n 's/^\(fuzz_[a-z0-9_]*\): .*/\1/p' | sort -u)
# Each fuzzer runs on one core: two at a time on two cores.
(cd build-fuzz && ctest --output-on-failure -j "$jobs" -L fuzz)

step "all tests passed"
