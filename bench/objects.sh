#!/usr/bin/env bash
# The native-client benchmark: object writes and reads through libbasalt
# (bench/objects.c) on a local cluster of 3 monitors and 3 OSDs (pool of
# size 3), beside fio's io_uring engine with direct=1 on a file on the same
# disk, row by row in one run (A B A B), so drift on a noisy machine hits
# both. Writes are compared with fio fdatasync=1 (an OSD acknowledges only
# what is durable, on all three).
#
#   bench/objects.sh [--runtime S] [--dir DIR] [--quick]
#
# Rows: 4 KiB random write and read, 128 KiB whole-object write and read,
# each at QD1 and QD32. CPU per operation counts the client and every
# daemon of the cluster (from /proc), but not fio's kernel work.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=10 dir=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--quick) runtime=2; shift ;;
	*) echo "usage: bench/objects.sh [--runtime S] [--dir DIR] [--quick]" >&2; exit 2 ;;
	esac
done
scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build objects basalt basalt-mon basalt-osd >/dev/null
out=bench/results/objects-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-objects-bench.XXXXXX")
fiofile="$dir/basalt-fio-objects.dat"
trap 'scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1 || true; rm -f "$fiofile"' EXIT

scripts/cluster.sh up --dir "$cluster" --osd-size 4G >/dev/null
export BASALT_CONF=$cluster/basalt.conf
build/basalt pool create bench --size 3 --pg-num 64 >/dev/null
for _ in $(seq 100); do
	build/basalt --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["pgs"].get("active+clean")==64 else 1)' && break
	sleep 0.2
done
fio --name=layout --filename="$fiofile" --size=1g --rw=write --bs=1m --direct=1 \
	--ioengine=io_uring --output=/dev/null

# row: op bs qd fio-rw
rows=(
	"write 4096 1 randwrite"
	"write 4096 32 randwrite"
	"read 4096 1 randread"
	"read 4096 32 randread"
	"write 131072 1 randwrite"
	"write 131072 32 randwrite"
	"read 131072 1 randread"
	"read 131072 32 randread"
)
prefilled=0
for r in "${rows[@]}"; do
	read -r op bs qd rw <<<"$r"
	echo "== $op $bs QD$qd" >&2
	fio --name=job --filename="$fiofile" --size=1g --rw="$rw" --bs="$bs" --iodepth="$qd" \
		--direct=1 --ioengine=io_uring --time_based --runtime="$runtime" --ramp_time=1 \
		$([ "$op" = write ] && echo --fdatasync=1) --output-format=json \
		>"$out/fio-$op-$bs-qd$qd.json"
	pre=
	[ "$op" = read ] && [ "$prefilled" = 0 ] && pre=--prefill && prefilled=1
	build/bench/objects -c "$cluster/basalt.conf" --keyring "$cluster/keyring" --pool bench \
		--op "$op" --bs "$bs" --qd "$qd" --seconds "$runtime" --objects 4096 \
		--pids "$cluster/pids" $pre >"$out/basalt-$op-$bs-qd$qd.json"
done
python3 bench/objects_table.py "$out" "${rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
