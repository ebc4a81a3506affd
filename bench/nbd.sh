#!/usr/bin/env bash
# The VM-disk benchmark: fio's nbd engine against basalt-nbd serving a
# volume of a local cluster (3 monitors, 3 OSDs, a pool of size 3), beside
# fio's io_uring engine with direct=1 on a file on the same disk, row by
# row in one run (A B A B), so drift on a noisy machine hits both. Writes
# are compared with fio fdatasync=1: Basalt answers a write only once all
# three OSDs have it durable.
#
#   bench/nbd.sh [--runtime S] [--dir DIR] [--quick]
#
# Rows: 4 KiB random write and read at QD1 and QD32, 1 MiB sequential
# write and read at QD4, over 1 GiB (the volume prefilled, so reads find
# data). CPU per operation counts basalt-nbd and every daemon of the
# cluster (from /proc), not fio.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=10 dir=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--quick) runtime=2; shift ;;
	*) echo "usage: bench/nbd.sh [--runtime S] [--dir DIR] [--quick]" >&2; exit 2 ;;
	esac
done
build=
. bench/lib.sh
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
fio --name=layout --filename="$fiofile" --size=1g --rw=write --bs=1m --direct=1 \
	--ioengine=io_uring --output=/dev/null
fio --name=layout --ioengine=nbd --uri="$uri" --size=1g --rw=write --bs=1m --iodepth=4 \
	--output=/dev/null

# row: name fio-rw bs qd
rows=(
	"4k-randwrite-qd1 randwrite 4k 1"
	"4k-randwrite-qd32 randwrite 4k 32"
	"4k-randread-qd1 randread 4k 1"
	"4k-randread-qd32 randread 4k 32"
	"1m-write-qd4 write 1m 4"
	"1m-read-qd4 read 1m 4"
)
for r in "${rows[@]}"; do
	read -r name rw bs qd <<<"$r"
	echo "== $name" >&2
	sync=
	case $rw in *write) sync=--fdatasync=1 ;; esac
	common=(--rw="$rw" --bs="$bs" --iodepth="$qd" --size=1g --time_based
		--runtime="$runtime" --ramp_time=1 --output-format=json)
	fio --name=job --filename="$fiofile" --direct=1 --ioengine=io_uring $sync "${common[@]}" \
		>"$out/fio-$name.json"
	c0=$(cpu_seconds "$out/pids")
	fio --name=job --ioengine=nbd --uri="$uri" "${common[@]}" --output="$out/nbd-$name.json" >/dev/null
	c1=$(cpu_seconds "$out/pids")
	echo "{\"cpu_s\": $(python3 -c "print($c1 - $c0)")}" >"$out/cpu-$name.json"
done
python3 bench/nbd_table.py "$out" "${rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
