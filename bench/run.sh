#!/usr/bin/env bash
# Basalt against Ceph and against the device, side by side, on this
# machine and in one run: a Basalt local cluster (3 monitors, 3 OSDs on
# files) and a Ceph 16 cluster (bench/ceph.sh: 1 monitor, 1 manager, 3
# BlueStore OSDs on files of the same size, pool size 3, cephx), and the
# same jobs against
#   device         fio io_uring direct=1 on a raw file on the same disk, and
#                  for writes also with fdatasync=1 (the durable limit);
#   basalt-nbd     Basalt through basalt-nbd (fio's nbd engine);
#   basalt-native  Basalt through libbasalt, its native client
#                  (bench/volume_load: fio's job options, fio's JSON);
#   ceph-rbd       Ceph through librbd (fio's rbd engine; librbd's cache off);
#   ceph-nbd       Ceph through qemu-nbd serving the RBD image (fio's nbd
#                  engine): the like-for-like NBD path.
# With --ec K+M, each Basalt and Ceph target has a twin on an erasure-coded
# pool beside it (basalt-ec-nbd, basalt-ec-native, ceph-ec-rbd, ceph-ec-nbd:
# Basalt's `pool create ec --ec K+M`, Ceph's pool `ec` with
# allow_ec_overwrites as the image's data pool, bench/ceph.sh --ec), run
# right after it in every round.
# Each job runs on every system before the next, and the whole sequence
# ROUNDS times (A B A B), so drift on a noisy machine hits them all.
# Every target holds a 1 GiB image, written once before the first job.
# Then the space run: a fresh volume (image) written whole, overwritten 5
# times, its first half TRIMmed, then deleted; then another fresh one
# with an eighth of it written whole in 4 KiB random writes (every row
# whole), then a quarter of its second half in 4 KiB random writes (rows
# and objects written in part); the raw space each system's OSDs use
# after each step, per pool kind (Basalt's and Ceph's runs side by side).
#
#   bench/run.sh [--quick] [--only SYSTEMS] [--jobs JOBS] [--runtime S]
#                [--rounds N] [--osd-size SIZE] [--space-size SIZE]
#                [--no-space] [--ec K+M] [--dir DIR] [--build DIR]
#
# SYSTEMS: a comma list of basalt, ceph, device (default all three), or of
# targets (basalt-nbd, basalt-native, ceph-rbd, ceph-nbd) for those alone.
# JOBS: a comma list of 4k-randwrite-qd1, 4k-randwrite-qd32, 4k-randread-qd1,
# 4k-randread-qd32, 1m-write-qd4, 1m-read-qd4 (default all). Default
# runtime 20 s per job and system after a 2 s ramp, 2 rounds, OSDs of 4G,
# space run on a 1G volume (--quick: 2 s, 1 s, 1 round, 64M). --ec K+M:
# K+M at most 3 (the clusters have 3 OSDs, one chunk each), e.g. 2+1.
# --build DIR uses Basalt as already built there (default: build/, built
# first). The last line on stderr names the results directory.
#
# Output in bench/results/run-TIME/: table.md (per job and system: IOPS,
# MB/s, mean and p99 latency averaged over the rounds, how far the rounds
# spread, CPU µs per I/O of every process of the system and of its OSDs
# alone, the ratios Basalt/Ceph and Basalt/device; with --ec, the ratios
# EC/replicated per system and Basalt/Ceph on EC; then the limits: each
# job's limit for 3 copies on this machine, from the device rows and a
# 4 KiB messenger round trip (bench/msgr_bench, run before each round of
# 4k-randwrite-qd1 when the device is measured), and Basalt against it;
# then the space run, and from it raw bytes per byte written),
# results.json, iops.png and p99.png (gnuplot), and each fio JSON. CPU
# counts the system's daemons and its front end: the NBD server, or the
# process the client library runs in (fio for librbd, volume_load).
# Everything it starts it stops, by PID. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,56p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
runtime=20 ramp=2 rounds=2 only=basalt,ceph,device osd_size=4G space_size=1G space=1
settle=12 dir=/var/tmp build= ec=
jobs_all=4k-randwrite-qd1,4k-randwrite-qd32,4k-randread-qd1,4k-randread-qd32,1m-write-qd4,1m-read-qd4
jobs=$jobs_all
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) runtime=2 ramp=1 rounds=1 space_size=64M settle=4; shift ;;
	--only) only=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--space-size) space_size=$2; shift 2 ;;
	--no-space) space=0; shift ;;
	--ec) ec=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage ;;
	esac
done
# want SYSTEM: a target of SYSTEM (basalt, ceph, device) is to run;
# want_target TARGET: that target is (its EC twin goes with it).
want() { [[ ",$only," == *",$1,"* || ",$only," == *",$1-"* ]]; }
want_target() { [[ ",$only," == *",${1%%-*},"* || ",$only," == *",${1/-ec-/-},"* ]]; }
for s in ${only//,/ }; do
	case $s in basalt|ceph|device|basalt-nbd|basalt-native|ceph-rbd|ceph-nbd) ;;
	*) echo "run.sh: --only takes basalt, ceph, device or targets (basalt-nbd, basalt-native, ceph-rbd, ceph-nbd)" >&2
	   exit 2 ;;
	esac
done
[ -z "$ec" ] || [[ $ec =~ ^([1-9])\+([1-9])$ && $((BASH_REMATCH[1] + BASH_REMATCH[2])) -le 3 ]] ||
	{ echo "run.sh: --ec takes K+M with K+M at most 3 (the clusters have 3 OSDs), e.g. 2+1" >&2; exit 2; }
for j in ${jobs//,/ }; do
	[[ ",$jobs_all," == *",$j,"* ]] || { echo "run.sh: unknown job $j (one of $jobs_all)" >&2; exit 2; }
done

space_bytes=$(python3 -c 'import re, sys
m = re.fullmatch(r"(\d+)([KMGT]?)(i?B)?", sys.argv[1], re.I)
print(int(m[1]) << 10 * "_KMGT".index((m[2] or "_").upper()) if m else 0)' "$space_size")
[ "$space_bytes" -gt 0 ] || { echo "run.sh: bad --space-size $space_size (e.g. 1G, 64M)" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds takes a positive count" >&2; exit 2; }

. bench/lib.sh
bench_build msgr_bench
[ -x "$build/bench/msgr_bench" ] || { echo "run.sh: $build/bench/msgr_bench is not built (ninja -C $build msgr_bench)" >&2; exit 1; }
bench_workspace run

# The targets in the order a round runs them, each EC twin right after
# its replicated one.
targets=()
for t in device device-fdatasync basalt-nbd basalt-native ceph-rbd ceph-nbd; do
	want_target "$t" || continue
	targets+=("$t")
	if [ -n "$ec" ] && [ "${t%%-*}" != device ]; then targets+=("${t%%-*}-ec-${t#*-}"); fi
done
has_target() { [[ " ${targets[*]} " == *" $1 "* ]]; }
# image TARGET: the volume (RBD image) it runs on: bench, or bench-ec on
# the erasure-coded pool.
image() { if [[ $1 == *-ec-* ]]; then echo bench-ec; else echo bench; fi; }
if want device; then
	fiofile=$work/device.dat
fi
if want basalt; then
	echo "== Basalt: 3 monitors, 3 OSDs of $osd_size${ec:+, pools rbd (3 copies) and ec ($ec)}" >&2
	bench_cluster "$work/basalt" "$osd_size"
	if [ -n "$ec" ]; then
		"$build/basalt" pool create ec --ec "$ec" --pg-num 64 >/dev/null
		"$build/basalt" volume create bench-ec --size 1G --pool ec >/dev/null
		bench_wait_clean 128
	fi
	# Also for the prefill and the space run, whatever the targets.
	bench_nbd "$work/basalt-nbd.log"
	pid[basalt-nbd]=$nbd_pid
	bport=$nbd_port
	awk '{print $2}' "$work/basalt/pids" >"$work/pids.basalt"
	awk '$1 ~ /^osd/ {print $2}' "$work/basalt/pids" >"$work/pids.basalt.osd"
fi
# ceph_nbd NAME IMAGE: qemu-nbd serving Ceph's RBD image IMAGE on a free
# loopback port (cport[NAME]), its PID in pid[NAME]. Its log goes with the
# results: a qemu-nbd that died shows why there.
declare -A cport
ceph_nbd() {
	local served=0
	read -r "cport[$1]" < <(scripts/free-ports 1)
	qemu-nbd --format=raw -t -e 8 -b 127.0.0.1 -p "${cport[$1]}" --cache=none --aio=threads \
		"rbd:rbd/$2:conf=$CEPH_CONF:id=admin" >"$out/$1.log" 2>&1 &
	pid[$1]=$!
	for _ in $(seq 50); do nbdinfo "nbd://127.0.0.1:${cport[$1]}" >/dev/null 2>&1 && { served=1; break; }; sleep 0.2; done
	[ "$served" = 1 ] ||
		{ echo "run.sh: qemu-nbd does not serve Ceph's image $2: $(tail -3 "$out/$1.log")" >&2; exit 1; }
}
if want ceph; then
	echo "== Ceph: 1 monitor, 1 manager, 3 BlueStore OSDs of $osd_size${ec:+, pools rbd (size 3) and ec ($ec)}" >&2
	bench/ceph.sh up --dir "$work/ceph" --osd-size "$osd_size" --pg-num 64 ${ec:+--ec "$ec"} \
		>"$work/ceph-up.log" 2>&1 || { cat "$work/ceph-up.log" >&2; exit 1; }
	export CEPH_CONF=$work/ceph/ceph.conf
	if has_target ceph-nbd; then ceph_nbd qemu-nbd bench; fi
	if has_target ceph-ec-nbd; then ceph_nbd qemu-nbd-ec bench-ec; fi
	awk '{print $2}' "$work/ceph/pids" >"$work/pids.ceph"
	awk '$1 ~ /^osd/ {print $2}' "$work/ceph/pids" >"$work/pids.ceph.osd"
fi
# qemu_nbd TARGET: the name of the qemu-nbd serving ceph-nbd's or
# ceph-ec-nbd's image.
qemu_nbd() { if [ "$1" = ceph-ec-nbd ]; then echo qemu-nbd-ec; else echo qemu-nbd; fi; }

# load TARGET ARGS...: the job given by fio options ARGS (--rw --bs
# --iodepth --size --runtime --ramp_time --output --time_based) against
# TARGET; the CPU seconds of the load
# generator itself go to $work/load-cpu (they count for ceph-rbd and
# basalt-native and their EC twins, whose client library runs inside it).
load() {
	local t=$1 img
	shift
	local cmd
	img=$(image "$t")
	case $t in
	device) cmd=(fio --name=job --filename="$fiofile" --direct=1 --ioengine=io_uring) ;;
	device-fdatasync) cmd=(fio --name=job --filename="$fiofile" --direct=1 --ioengine=io_uring --fdatasync=1) ;;
	basalt-nbd|basalt-ec-nbd) cmd=(fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$bport/$img") ;;
	ceph-rbd|ceph-ec-rbd) cmd=(fio --name=job --ioengine=rbd --clientname=admin --pool=rbd --rbdname="$img") ;;
	ceph-nbd|ceph-ec-nbd) cmd=(fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:${cport[$(qemu_nbd "$t")]}/") ;;
	basalt-native|basalt-ec-native)
		cmd=("$build/bench/volume_load" -c "$BASALT_CONF" --keyring "$work/basalt/keyring" --volume "$img")
		;;
	esac
	[[ $t == basalt*-native ]] || cmd+=(--output-format=json)
	bench_child_cpu "$work/load-cpu" "${cmd[@]}" "$@"
}
# Through fio, one target per file or image (volume_load would run for its
# runtime, not the size).
echo "== prefill: 1 GiB on every target" >&2
for t in device basalt-nbd ceph-rbd ${ec:+basalt-ec-nbd ceph-ec-rbd}; do
	want "${t%%-*}" || continue
	load "$t" --size=1G --rw=write --bs=1M --iodepth=4 --output="$out/prefill-$t.json" >/dev/null
done

# Each row of $out/rows: JOB TARGET ROUND FIO_JSON CPU_SECONDS OSD_CPU_SECONDS
# (every process of the system, and its OSDs alone, during the run).
: >"$out/rows"
echo "$ramp" >"$out/ramp"
echo 3 >"$out/copies" # bench_cluster's pool size
[ -z "$ec" ] || echo "$ec" >"$out/ec"
# The limits table (run_table.py) needs a loopback round trip of a 4 KiB
# message through the messenger, measured here in every round (with the
# device rows, which the limits also need).
msgr_rtt() {
	"$build/bench/msgr_bench" --seconds 2 --sizes 4096 >"$out/msgr-$1.md"
}
for j in ${jobs//,/ }; do
	IFS=- read -r bs rw qd <<<"$j"
	qd=${qd#qd}
	for round in $(seq "$rounds"); do
		[ "$j" = 4k-randwrite-qd1 ] && want device && msgr_rtt "$round"
		for t in "${targets[@]}"; do
			[ "$t" = device-fdatasync ] && [[ $rw != *write ]] && continue
			echo "== $j on $t (round $round of $rounds)" >&2
			pids=- osds=- front=()
			case $t in
			basalt-*) pids=$work/pids.basalt osds=$work/pids.basalt.osd ;;
			ceph-*) pids=$work/pids.ceph osds=$work/pids.ceph.osd ;;
			esac
			case $t in
			basalt-nbd|basalt-ec-nbd) front=("${pid[basalt-nbd]}") ;;
			ceph-nbd|ceph-ec-nbd)
				q=$(qemu_nbd "$t")
				front=("${pid[$q]}")
				kill -0 "${pid[$q]}" 2>/dev/null ||
					{ echo "run.sh: $q (Ceph's NBD server) is gone: $(tail -3 "$out/$q.log")" >&2; exit 1; }
				;;
			esac
			c0=$(cpu_seconds "$pids" "${front[@]}") o0=$(cpu_seconds "$osds")
			f=$j-$t-$round.json
			load "$t" --rw="$rw" --bs="${bs^^}" --iodepth="$qd" --size=1G --time_based \
				--runtime="$runtime" --ramp_time="$ramp" --output="$out/$f" >/dev/null
			c1=$(cpu_seconds "$pids" "${front[@]}") o1=$(cpu_seconds "$osds")
			inproc=0
			case $t in ceph-rbd|ceph-ec-rbd|basalt-native|basalt-ec-native) inproc=$(cat "$work/load-cpu") ;; esac
			echo "$j $t $round $f $(python3 -c "print($c1 - $c0 + $inproc, $o1 - $o0)")" >>"$out/rows"
		done
	done
done

# The space run: raw bytes the system's OSDs use (every copy or chunk,
# metadata and journals included) after each step, once the figure
# stopped changing (bench_space_step in bench/lib.sh). Each line of
# $out/space: SYSTEM STEP USED_BYTES SECONDS_UNTIL_THE_LAST_CHANGE
# DATA_BYTES, where SYSTEM is basalt, ceph, or basalt-ec, ceph-ec (on the
# EC pool).
space_step() { bench_space_step "$1" "$2" "$settle" >>"$out/space"; }
# space_volume SYSTEM NAME: a fresh volume (image) NAME of the space
# run's size on SYSTEM's pool; sets io to the fio command writing it.
space_volume() {
	local pool=rbd data_pool=()
	if [[ $1 == *-ec ]]; then pool=ec data_pool=(--data-pool ec); fi
	case $1 in
	basalt*)
		"$build/basalt" volume create "$2" --size "$space_size" --pool "$pool" >/dev/null
		io=(fio --name=space --ioengine=nbd --uri="nbd://127.0.0.1:$bport/$2") ;;
	ceph*)
		rbd create "rbd/$2" --size "$space_size" "${data_pool[@]}"
		io=(fio --name=space --ioengine=rbd --clientname=admin --pool=rbd --rbdname="$2") ;;
	esac
}
space_rm() {
	case $1 in
	basalt*) "$build/basalt" volume rm "$2" >/dev/null ;;
	ceph*) rbd rm "rbd/$2" >/dev/null 2>&1 ;;
	esac
}
space_run() {
	local sys=$1 io
	echo "== space run on $sys: a $space_size volume written, overwritten 5 times, half TRIMmed, deleted" >&2
	space_volume "$sys" space
	space_step "$sys" created
	"${io[@]}" --rw=write --bs=1M --iodepth=4 --output-format=json --output="$out/space-$sys-write.json" >/dev/null
	space_step "$sys" written
	for i in 1 2 3 4 5; do
		"${io[@]}" --rw=randwrite --randrepeat=0 --bs=1M --iodepth=4 --output-format=json \
			--output="$out/space-$sys-overwrite-$i.json" >/dev/null
		space_step "$sys" "overwritten-$i"
	done
	"${io[@]}" --rw=trim --bs=4M --iodepth=4 --size=50% --output-format=json \
		--output="$out/space-$sys-trim.json" >/dev/null
	space_step "$sys" half-trimmed
	space_rm "$sys" space
	space_step "$sys" deleted
	# 4 KiB writes: the first eighth written whole in random order (fio's
	# random map: every 4 KiB once), so every row and object ends whole;
	# then an eighth of the volume's bytes written at random over its
	# second half (each 4 KiB at most once): most rows and objects
	# touched are written in part.
	echo "== space run on $sys: 4 KiB random writes, an eighth whole, then a quarter of the second half" >&2
	space_volume "$sys" space4k
	space_step "$sys" 4k-created
	"${io[@]}" --rw=randwrite --bs=4k --iodepth=32 --size=$((space_bytes / 8)) --output-format=json \
		--output="$out/space-$sys-4k-dense.json" >/dev/null
	space_step "$sys" 4k-dense
	"${io[@]}" --rw=randwrite --bs=4k --iodepth=32 --offset=$((space_bytes / 2)) \
		--size=$((space_bytes / 2)) --io_size=$((space_bytes / 8)) --output-format=json \
		--output="$out/space-$sys-4k-sparse.json" >/dev/null
	space_step "$sys" 4k-sparse
	space_rm "$sys" space4k
}
if [ "$space" = 1 ]; then
	: >"$out/space"
	echo "$space_bytes" >"$out/space-size"
	# Basalt's and Ceph's clusters side by side (each its own used bytes);
	# within one, the pool kinds in turn.
	for s in basalt ceph; do
		if want "$s"; then
			(for sys in "$s" ${ec:+"$s-ec"}; do space_run "$sys"; done) &
			pid[space-$s]=$!
		fi
	done
	for s in basalt ceph; do
		if [ -n "${pid[space-$s]:-}" ]; then
			wait "${pid[space-$s]}" || { echo "run.sh: the space run on $s failed" >&2; exit 1; }
			unset "pid[space-$s]"
		fi
	done
fi
python3 bench/run_table.py "$out" | tee "$out/table.md"
echo "results in $out" >&2
