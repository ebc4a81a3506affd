#!/usr/bin/env bash
# The VM-disk benchmark: fio's nbd engine against basalt-nbd serving a
# volume of a local cluster (3 monitors, 3 OSDs, a pool of size 3), beside
# fio's io_uring engine with direct=1 on a file on the same disk, row by
# row in one run (A B A B), so drift on a noisy machine hits both. Writes
# are compared with fio fdatasync=1: Basalt answers a write only once all
# three OSDs have it durable.
#
#   bench/nbd.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Rows: 4 KiB random write and read at QD1 and QD32, 1 MiB sequential
# write and read at QD4, over 1 GiB (the volume prefilled, so reads find
# data). CPU per operation counts basalt-nbd and every daemon of the
# cluster (from /proc), not fio.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_options nbd "$@"
bench_build
out=bench/results/nbd-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-nbd-bench.XXXXXX")
fiofile="$dir/basalt-fio-nbd.dat"
nbd_pid=
stop() {
	[ -n "$nbd_pid" ] && { kill "$nbd_pid"; wait "$nbd_pid"; } 2>/dev/null || true
	scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1 || true
	rm -f "$fiofile"
}
trap stop EXIT

bench_cluster "$cluster" 4G
bench_nbd "$cluster/nbd.log"
uri=nbd://127.0.0.1:$nbd_port/bench
{ awk '{print $2}' "$cluster/pids"; echo "$nbd_pid"; } >"$out/pids"

echo "== layout: 1 GiB on each side" >&2
bench_fio_layout "$fiofile"
fio --name=layout --ioengine=nbd --uri="$uri" --size=1g --rw=write --bs=1m --iodepth=4 \
	--output=/dev/null

nbd_row() { # NAME: the row through basalt-nbd
	bench_cpu "$out/cpu-$1.json" "$out/pids" -- \
		fio --name=job --ioengine=nbd --uri="$uri" "${common[@]}" --output="$out/nbd-$1.json" >/dev/null
}
bench_volume_run "$fiofile" "$out" nbd_row
python3 bench/nbd_table.py "$out" "${bench_volume_rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
