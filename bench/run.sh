#!/usr/bin/env bash
# Basalt against Ceph and against the device, side by side, on this
# machine and in one run: a Basalt local cluster (3 monitors, 3 OSDs on
# files) and a Ceph 16 cluster (bench/ceph.sh: 1 monitor, 1 manager, 3
# BlueStore OSDs on files of the same size, pool size 3, cephx), and the
# same fio jobs against
#   device       fio io_uring direct=1 on a raw file on the same disk, and
#                for writes also with fdatasync=1 (the durable limit);
#   basalt-nbd   Basalt through basalt-nbd (fio's nbd engine);
#   ceph-rbd     Ceph through librbd (fio's rbd engine; librbd's cache off);
#   ceph-nbd     Ceph through qemu-nbd serving the RBD image (fio's nbd
#                engine): the like-for-like NBD path.
# Each job runs on every system before the next job starts, so drift on a
# noisy machine hits them all. Every target holds a 1 GiB image, written
# once before the first job.
#
#   bench/run.sh [--quick] [--only SYSTEMS] [--jobs JOBS] [--runtime S]
#                [--osd-size SIZE] [--dir DIR] [--build DIR]
#
# SYSTEMS: a comma list of basalt, ceph, device (default all three).
# JOBS: a comma list of 4k-randwrite-qd1, 4k-randwrite-qd32, 4k-randread-qd1,
# 4k-randread-qd32, 1m-write-qd4, 1m-read-qd4 (default all). Default
# runtime 20 s per job and system after a 2 s ramp (--quick: 3 s, 1 s).
# --build DIR uses Basalt as already built there (default: build/, built
# first). The last line on stderr names the results directory.
#
# Output in bench/results/run-TIME/: table.md (IOPS, MB/s, mean and p99
# latency, CPU µs per I/O of every process of the system, and the ratios
# Basalt/Ceph and Basalt/device), results.json, and each fio JSON. CPU
# counts the system's daemons and its NBD server; for ceph-rbd also fio
# itself, since librbd does its work inside fio's process.
# Everything it starts it stops, by PID. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
runtime=20 ramp=2 only=basalt,ceph,device osd_size=4G dir=/var/tmp build=
jobs_all=4k-randwrite-qd1,4k-randwrite-qd32,4k-randread-qd1,4k-randread-qd32,1m-write-qd4,1m-read-qd4
jobs=$jobs_all
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) runtime=3 ramp=1; shift ;;
	--only) only=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage ;;
	esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
for s in ${only//,/ }; do
	case $s in basalt|ceph|device) ;; *) echo "run.sh: --only takes basalt, ceph, device" >&2; exit 2 ;; esac
done
for j in ${jobs//,/ }; do
	[[ ",$jobs_all," == *",$j,"* ]] || { echo "run.sh: unknown job $j (one of $jobs_all)" >&2; exit 2; }
done

if [ -z "$build" ]; then
	scripts/install-deps.sh
	cmake -S . -B build -G Ninja >/dev/null
	ninja -C build basalt basalt-mon basalt-osd basalt-nbd >/dev/null
	build=build
fi
build=$(cd "$build" && pwd)
. bench/lib.sh
out=bench/results/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
work=$(mktemp -d "$dir/basalt-bench-run.XXXXXX")
declare -A pid
stop() {
	for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
	scripts/cluster.sh down --dir "$work/basalt" --purge >/dev/null 2>&1 || true
	[ -d "$work/ceph" ] && bench/ceph.sh down --dir "$work/ceph" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap stop EXIT

targets=()
if want device; then
	fiofile=$work/device.dat
	targets+=(device device-fdatasync)
fi
if want basalt; then
	echo "== Basalt: 3 monitors, 3 OSDs of $osd_size" >&2
	bench_cluster "$work/basalt" "$osd_size"
	bench_nbd "$work/basalt-nbd.log"
	pid[basalt-nbd]=$nbd_pid
	bport=$nbd_port
	{ awk '{print $2}' "$work/basalt/pids"; echo "${pid[basalt-nbd]}"; } >"$work/pids.basalt"
	targets+=(basalt-nbd)
fi
if want ceph; then
	echo "== Ceph: 1 monitor, 1 manager, 3 BlueStore OSDs of $osd_size" >&2
	bench/ceph.sh up --dir "$work/ceph" --osd-size "$osd_size" --pg-num 64 >"$work/ceph-up.log" 2>&1 ||
		{ cat "$work/ceph-up.log" >&2; exit 1; }
	export CEPH_CONF=$work/ceph/ceph.conf
	read -r cport < <(scripts/free-ports 1)
	qemu-nbd --format=raw -t -e 8 -b 127.0.0.1 -p "$cport" --cache=none --aio=threads \
		"rbd:rbd/bench:conf=$CEPH_CONF:id=admin" >"$work/qemu-nbd.log" 2>&1 &
	pid[qemu-nbd]=$!
	for _ in $(seq 50); do nbdinfo "nbd://127.0.0.1:$cport" >/dev/null 2>&1 && break; sleep 0.2; done
	awk '{print $2}' "$work/ceph/pids" >"$work/pids.ceph"
	targets+=(ceph-rbd ceph-nbd)
fi

# fio_target TARGET ARGS...: fio against TARGET; the CPU seconds fio
# itself used go to $work/fio-cpu (they count for ceph-rbd, whose client
# library runs inside fio).
fio_target() {
	local t=$1
	shift
	local cmd
	case $t in
	device) cmd=(fio --name=job --filename="$fiofile" --direct=1 --ioengine=io_uring) ;;
	device-fdatasync) cmd=(fio --name=job --filename="$fiofile" --direct=1 --ioengine=io_uring --fdatasync=1) ;;
	basalt-nbd) cmd=(fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$bport/bench") ;;
	ceph-rbd) cmd=(fio --name=job --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench) ;;
	ceph-nbd) cmd=(fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$cport/") ;;
	esac
	python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(u.ru_utime + u.ru_stime))
sys.exit(rc)' "$work/fio-cpu" "${cmd[@]}" "$@"
}
echo "== prefill: 1 GiB on every target" >&2
for t in "${targets[@]}"; do
	[ "$t" = device-fdatasync ] || [ "$t" = ceph-nbd ] && continue
	fio_target "$t" --size=1g --rw=write --bs=1m --iodepth=4 --output-format=json \
		--output="$out/prefill-$t.json" >/dev/null
done

: >"$out/rows"
echo "$ramp" >"$out/ramp"
for j in ${jobs//,/ }; do
	IFS=- read -r bs rw qd <<<"$j"
	qd=${qd#qd}
	for t in "${targets[@]}"; do
		[ "$t" = device-fdatasync ] && [[ $rw != *write ]] && continue
		echo "== $j on $t" >&2
		pids=-
		front=()
		case $t in
		basalt-nbd) pids=$work/pids.basalt ;;
		ceph-nbd) pids=$work/pids.ceph front=("${pid[qemu-nbd]}") ;;
		ceph-rbd) pids=$work/pids.ceph ;;
		esac
		c0=$(cpu_seconds "$pids" "${front[@]}")
		fio_target "$t" --rw="$rw" --bs="$bs" --iodepth="$qd" --size=1g --time_based \
			--runtime="$runtime" --ramp_time="$ramp" --output-format=json \
			--output="$out/$j-$t.json" >/dev/null
		c1=$(cpu_seconds "$pids" "${front[@]}")
		extra=0
		[ "$t" = ceph-rbd ] && extra=$(cat "$work/fio-cpu")
		echo "$j $t $j-$t.json $(python3 -c "print($c1 - $c0 + $extra)")" >>"$out/rows"
	done
done
python3 bench/run_table.py "$out" | tee "$out/table.md"
echo "results in $out" >&2
