#!/usr/bin/env bash
# The store benchmark: Basalt's store driven in-process (bench/store_bench.c)
# beside fio's io_uring engine with direct=1 on a file on the same disk, in
# one run, job by job (A B A B), so drift on a noisy machine hits both.
#
#   bench/store.sh [--runtime S] [--dir DIR] [--quick]
#
# Rows: 4 KiB random write and read at QD1 and QD32, 128 KiB and 1 MiB
# sequential write and read at QD4, over a 1 GiB working set. Sync settings
# are compared like with like: Basalt osd_sync=always (acknowledge after the
# flush) against fio fdatasync=1, and osd_sync=batch against fio without it.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=10 dir=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--quick) runtime=2; shift ;;
	*) echo "usage: bench/store.sh [--runtime S] [--dir DIR] [--quick]" >&2; exit 2 ;;
	esac
done
scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build store_bench >/dev/null
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

fio --name=layout --filename="$fiofile" --size=1g --rw=write --bs=1m --direct=1 \
	--ioengine=io_uring --output=/dev/null

run_fio() { # rw bs qd sync(0/1) -> json line
	local rw=$1 bs=$2 qd=$3 sync=$4
	fio --name=job --filename="$fiofile" --size=1g --rw="$rw" --bs="$bs" --iodepth="$qd" \
		--direct=1 --ioengine=io_uring --time_based --runtime="$runtime" --ramp_time=1 \
		$([ "$sync" = 1 ] && echo --fdatasync=1) --output-format=json \
		>"$out/fio-$rw-$bs-qd$qd-sync$sync.json"
}

run_basalt() { # job qd bs sync
	local job=$1 qd=$2 bs=$3 sync=$4 seq=128k
	case "$job" in seq*) seq=$bs ;; esac
	build/bench/store_bench --device "$dev" --size 4G --working-set 1G --runtime "$runtime" \
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

python3 - "$out" "${jobs[@]}" <<'PY' | tee "$out/table.md"
import json, sys, os
out = sys.argv[1]
jobs = [j.split() for j in sys.argv[2:]]
def fio(rw, bs, qd, sync):
    d = json.load(open(f"{out}/fio-{rw}-{bs}-qd{qd}-sync{sync}.json"))["jobs"][0]
    side = d["write"] if "write" in rw else d["read"]
    lat = side["clat_ns"] if side["clat_ns"]["N"] else side["lat_ns"]
    p99 = lat.get("percentile", {}).get("99.000000", 0)
    cpu = (d["usr_cpu"] + d["sys_cpu"]) / 100 * d["elapsed"] if "elapsed" in d else 0
    ops = side["total_ios"] or 1
    return side["iops"], side["bw_bytes"] / 1e6, side["lat_ns"]["mean"] / 1e3, p99 / 1e3
def basalt(job, bs, qd, sync):
    d = json.loads(open(f"{out}/basalt-{job}-{bs}-qd{qd}-{sync}.json").read().splitlines()[-1])
    return d["iops"], d["mbps"], d["mean_us"], d["p99_us"]
print("| job | QD | sync | system | IOPS | MB/s | mean µs | p99 µs | Basalt/fio IOPS | Basalt/fio mean lat |")
print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
for job, qd, bs, rw in jobs:
    name = f"{'4k ' if bs == '4k' else bs + ' '}{'rand' if 'rand' in job else 'seq'} {'write' if 'write' in job else 'read'}"
    for sync, fsync in (("always", 1), ("batch", 0)):
        f = fio(rw, bs, qd, fsync)
        b = basalt(job, bs, qd, sync)
        label = "fdatasync=1" if fsync else "none"
        print(f"| {name} | {qd} | {label} | fio | {f[0]:.0f} | {f[1]:.1f} | {f[2]:.1f} | {f[3]:.1f} | | |")
        print(f"| {name} | {qd} | osd_sync={sync} | Basalt store | {b[0]:.0f} | {b[1]:.1f} | {b[2]:.1f} | {b[3]:.1f} | {b[0]/f[0]:.2f} | {b[2]/f[2]:.2f} |")
PY
echo "results in $out" >&2
