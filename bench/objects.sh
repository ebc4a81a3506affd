#!/usr/bin/env bash
# The native-client benchmark: object writes and reads through libbasalt
# (bench/objects.c) on a local cluster of 3 monitors and 3 OSDs (pool of
# size 3), beside fio's io_uring engine with direct=1 on a file on the same
# disk, row by row in one run (A B A B), so drift on a noisy machine hits
# both. Writes are compared with fio fdatasync=1 (an OSD acknowledges only
# what is durable, on all three).
#
#   bench/objects.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Rows: 4 KiB random write and read, 128 KiB whole-object write and read,
# each at QD1 and QD32. CPU per operation counts the client and every
# daemon of the cluster (from /proc), but not fio's kernel work.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_options objects "$@"
bench_build objects
out=bench/results/objects-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-objects-bench.XXXXXX")
fiofile="$dir/basalt-fio-objects.dat"
trap 'scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1 || true; rm -f "$fiofile"' EXIT

bench_cluster "$cluster" 4G bench
bench_fio_layout "$fiofile"

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
	bench_fio_file "$fiofile" "$out/fio-$op-$bs-qd$qd.json" "$rw" "$bs" "$qd" \
		"$([ "$op" = write ] && echo 1 || echo 0)"
	pre=
	[ "$op" = read ] && [ "$prefilled" = 0 ] && pre=--prefill && prefilled=1
	"$build/bench/objects" -c "$cluster/basalt.conf" --keyring "$cluster/keyring" --pool bench \
		--op "$op" --bs "$bs" --qd "$qd" --seconds "$runtime" --objects 4096 \
		--pids "$cluster/pids" $pre >"$out/basalt-$op-$bs-qd$qd.json"
done
python3 bench/objects_table.py "$out" "${rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
