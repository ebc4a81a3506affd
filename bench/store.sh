#!/usr/bin/env bash
# The store benchmark: Basalt's store driven in-process (bench/store_bench.c)
# beside fio's io_uring engine with direct=1 on a file on the same disk, in
# one run, job by job (A B A B), so drift on a noisy machine hits both.
#
#   bench/store.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Rows: 4 KiB random write and read at QD1 and QD32, 128 KiB and 1 MiB
# sequential write and read at QD4, over a 1 GiB working set. Sync settings
# are compared like with like: Basalt osd_sync=always (acknowledge after the
# flush) against fio fdatasync=1, and osd_sync=batch against fio without it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_options store "$@"
bench_build store_bench
out=bench/results/store-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
dev="$dir/basalt-store-bench.img" fiofile="$dir/basalt-fio-bench.dat"
trap 'rm -f "$dev" "$fiofile"' EXIT

# job: name qd bs fio-rw
jobs=(
	"randwrite4k 1 4k randwrite"
	"randwrite4k 32 4k randwrite"
	"randread4k 1 4k randread"
	"randread4k 32 4k randread"
	"seqwrite 4 128k write"
	"seqread 4 128k read"
	"seqwrite 4 1m write"
	"seqread 4 1m read"
)

bench_fio_layout "$fiofile"

run_fio() { # rw bs qd sync(0/1)
	bench_fio_file "$fiofile" "$out/fio-$1-$2-qd$3-sync$4.json" "$@"
}

run_basalt() { # job qd bs sync
	local job=$1 qd=$2 bs=$3 sync=$4 seq=128k
	case "$job" in seq*) seq=$bs ;; esac
	"$build/bench/store_bench" --device "$dev" --size 4G --working-set 1G --runtime "$runtime" \
		--sync "$sync" --seq-bs "$seq" --jobs "$job:$qd" | grep -v prefill \
		>"$out/basalt-$job-$bs-qd$qd-$sync.json"
}

for j in "${jobs[@]}"; do
	read -r job qd bs rw <<<"$j"
	echo "== $job QD$qd $bs" >&2
	run_fio "$rw" "$bs" "$qd" 1
	run_basalt "$job" "$qd" "$bs" always
	run_fio "$rw" "$bs" "$qd" 0
	run_basalt "$job" "$qd" "$bs" batch
done

python3 bench/store_table.py "$out" "${jobs[@]}" | tee "$out/table.md"
echo "results in $out" >&2
