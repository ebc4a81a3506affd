#!/usr/bin/env bash
# Snapshots, Basalt beside Ceph 16 on this machine in one run (a Basalt
# local cluster of 3 monitors and 3 OSDs on files; bench/ceph.sh: 1
# monitor, 1 manager, 3 BlueStore OSDs of the same size, pool size 3):
#   after   4 KiB random writes at QD32 through NBD (basalt-nbd; qemu-nbd
#           over the RBD image) for 2 x WINDOW s; a snapshot is taken at
#           WINDOW s; IOPS in the WINDOW s after it / IOPS before it
#           (per-second fio log; each system ROUNDS times, A B A B, a new
#           snapshot each round). Ceph copies a 4 MiB object at each first
#           write after a snapshot, Basalt a 128 KiB block.
#   times   `snap create` and `snap rm` of a snapshot of the SIZE volume
#           written whole, then overwritten whole (every object cloned).
#   many    (Basalt) 4 KiB random write QD32 IOPS on a volume with MANY
#           snapshots / with none, measured A B A B on two volumes.
#   space   a fresh SIZE volume written whole; then 5 times: a snapshot,
#           10% of the volume overwritten at random (1 MiB writes); then
#           every snapshot removed: the OSDs' raw bytes after each step,
#           once settled (Ceph trims removed snapshots in the background).
#
#   bench/snap.sh [--quick] [--only basalt|ceph] [--size SIZE]
#                 [--window S] [--rounds N] [--many N] [--osd-size SIZE]
#                 [--dir DIR] [--build DIR]
# Defaults: 1G volume, 10 s window, 2 rounds, 1,000 snapshots, OSDs of 4G
# (--quick: 256M, 4 s, 1 round, 20 snapshots). Output in bench/results/snap-TIME/: table.md, results.json
# and each fio log. Everything it starts it stops, by PID. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
size=1G window=10 rounds=2 many=1000 osd_size=4G only=basalt,ceph dir=/var/tmp build= settle=12
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) size=256M window=4 rounds=1 many=20 settle=4; shift ;;
	--many) many=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "snap.sh: unknown option $1" >&2; usage ;;
	esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
. bench/lib.sh
bench_build
bench_workspace snap

systems=()
if want basalt; then
	echo "== Basalt: 3 monitors, 3 OSDs of $osd_size" >&2
	bench_cluster "$work/basalt" "$osd_size" rbd
	"$build/basalt" volume create bench --size "$size" >/dev/null
	bench_nbd "$work/basalt-nbd.log"
	pid[basalt-nbd]=$nbd_pid
	bport=$nbd_port
	systems+=(basalt)
fi
if want ceph; then
	echo "== Ceph: 1 monitor, 1 manager, 3 BlueStore OSDs of $osd_size" >&2
	bench/ceph.sh up --dir "$work/ceph" --osd-size "$osd_size" --pg-num 64 >"$work/ceph-up.log" 2>&1 ||
		{ cat "$work/ceph-up.log" >&2; exit 1; }
	export CEPH_CONF=$work/ceph/ceph.conf
	rbd rm rbd/bench >/dev/null 2>&1
	rbd create rbd/bench --size "$size"
	read -r cport < <(scripts/free-ports 1)
	qemu-nbd --format=raw -t -e 8 -b 127.0.0.1 -p "$cport" --cache=none --aio=threads \
		"rbd:rbd/bench:conf=$CEPH_CONF:id=admin" >"$work/qemu-nbd.log" 2>&1 &
	pid[qemu-nbd]=$!
	for _ in $(seq 50); do nbdinfo "nbd://127.0.0.1:$cport" >/dev/null 2>&1 && break; sleep 0.2; done
	systems+=(ceph)
fi

# io SYSTEM VOLUME FIO-OPTIONS...: fio on the system's volume through NBD
# (Basalt) or librbd (Ceph's `space` image, which qemu-nbd does not serve).
io() {
	local sys=$1 vol=$2
	shift 2
	case $sys/$vol in
	basalt/*) fio --name=io --ioengine=nbd --uri="nbd://127.0.0.1:$bport/$vol" "$@" ;;
	ceph/bench) fio --name=io --ioengine=nbd --uri="nbd://127.0.0.1:$cport/" "$@" ;;
	ceph/*) fio --name=io --ioengine=rbd --clientname=admin --pool=rbd --rbdname="$vol" "$@" ;;
	esac
}
snap() { # snap SYSTEM create|rm VOLUME SNAP
	case $1 in
	basalt) "$build/basalt" snap "$2" "$3@$4" >/dev/null ;;
	ceph) rbd snap "$2" "rbd/$3@$4" >/dev/null 2>&1 ;;
	esac
}
seconds() { python3 -c "import time; print(f'{time.monotonic():.3f}')"; }

echo "== prefill: $size on every system" >&2
for sys in "${systems[@]}"; do
	io "$sys" bench --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
done

# after: rows "SYSTEM ROUND BEFORE_IOPS AFTER_IOPS CREATE_SECONDS" in $out/after.
: >"$out/after"
for round in $(seq "$rounds"); do
	for sys in "${systems[@]}"; do
		echo "== after a snapshot: $sys, round $round" >&2
		log=$out/after-$sys-$round
		io "$sys" bench --rw=randwrite --bs=4k --iodepth=32 --size="$size" --time_based \
			--runtime=$((2 * window + 1)) --write_iops_log="$log" --log_avg_msec=1000 \
			--output-format=json --output="$log.json" >/dev/null &
		fio_pid=$!
		sleep "$((window + 1))"
		t0=$(seconds)
		snap "$sys" create bench "r$round"
		t1=$(seconds)
		wait "$fio_pid"
		python3 - "$log"_iops.1.log "$window" "$sys" "$round" "$(python3 -c "print($t1 - $t0)")" \
			>>"$out/after" <<'PY'
import sys
rows = [l.split(",") for l in open(sys.argv[1]) if l.strip()]
per_s = {}
for r in rows:
    per_s.setdefault(int(r[0]) // 1000, []).append(int(r[1]))
w = int(sys.argv[2])
# second 0 is fio's start-up; the snapshot was taken at w + 1 s
before = [sum(per_s[s]) for s in range(1, w + 1) if s in per_s]
after = [sum(per_s[s]) for s in range(w + 1, 2 * w + 1) if s in per_s]
print(sys.argv[3], sys.argv[4], sum(before) / len(before), sum(after) / len(after), sys.argv[5])
PY
	done
done

# times: rows "SYSTEM CREATE_SECONDS RM_SECONDS" in $out/times.
: >"$out/times"
for sys in "${systems[@]}"; do
	echo "== snap create / rm times: $sys" >&2
	for round in $(seq "$rounds"); do snap "$sys" rm bench "r$round"; done
	io "$sys" bench --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
	t0=$(seconds)
	snap "$sys" create bench timed
	t1=$(seconds)
	io "$sys" bench --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
	t2=$(seconds)
	snap "$sys" rm bench timed
	t3=$(seconds)
	echo "$sys $(python3 -c "print($t1 - $t0, $t3 - $t2)")" >>"$out/times"
done

# space: lines "SYSTEM STEP USED_BYTES SECONDS DATA_BYTES" in $out/space.
: >"$out/space"
for sys in "${systems[@]}"; do
	echo "== space: $sys" >&2
	case $sys in
	basalt) "$build/basalt" volume create space --size "$size" >/dev/null ;;
	ceph) rbd create rbd/space --size "$size" ;;
	esac
	bench_space_step "$sys" created "$settle" >>"$out/space"
	io "$sys" space --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
	bench_space_step "$sys" written "$settle" >>"$out/space"
	for i in 1 2 3 4 5; do
		snap "$sys" create space "s$i"
		io "$sys" space --rw=randwrite --randrepeat=0 --bs=1M --iodepth=4 --size="$size" \
			--io_size=10% --output=/dev/null >/dev/null
		bench_space_step "$sys" "snapshot-$i+10%" "$settle" >>"$out/space"
	done
	for i in 1 2 3 4 5; do snap "$sys" rm space "s$i"; done
	bench_space_step "$sys" "snapshots-removed" "$settle" >>"$out/space"
done

# many: rows "ROUND VOLUME SNAPSHOTS IOPS" in $out/many.
: >"$out/many"
# Last: with the space run's volume and the first volume removed, the OSDs
# hold these two volumes and one clone of each object of `many`.
if want basalt; then
	"$build/basalt" volume rm space >/dev/null 2>&1 || true
	for round in $(seq "$rounds"); do "$build/basalt" snap rm "bench@r$round" >/dev/null 2>&1 || true; done
	"$build/basalt" volume rm bench >/dev/null
	echo "== $many snapshots: creating them" >&2
	for v in none many; do
		"$build/basalt" volume create "$v" --size "$size" >/dev/null
		io basalt "$v" --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
	done
	for i in $(seq "$many"); do "$build/basalt" snap create "many@m$i" >/dev/null; done
	# Every object's first write after the snapshots makes its clone (the
	# "after" rows measure that): made here, so the rows below measure
	# writes beside MANY snapshots, not the copies.
	io basalt many --rw=write --bs=1M --iodepth=4 --size="$size" --output=/dev/null >/dev/null
	for round in $(seq "$rounds"); do
		for v in none many; do
			echo "== $many snapshots: 4k-randwrite-qd32 on $v, round $round" >&2
			io basalt "$v" --rw=randwrite --bs=4k --iodepth=32 --size="$size" --time_based \
				--runtime="$window" --ramp_time=1 --output-format=json \
				--output="$out/many-$v-$round.json" >/dev/null
			echo "$round $v $([ $v = many ] && echo "$many" || echo 0) $(python3 -c \
				'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"])' \
				"$out/many-$v-$round.json")" >>"$out/many"
		done
	done
fi

python3 - "$out" "$size" <<'PY' | tee "$out/table.md"
import json, sys
out, size = sys.argv[1], sys.argv[2]
after = [l.split() for l in open(f"{out}/after")]
times = [l.split() for l in open(f"{out}/times")]
space = [l.split() for l in open(f"{out}/space")]
res = {"after": [], "times": {}, "space": {}}
print(f"## 4 KiB random write QD32 through NBD, before and after a snapshot ({size} volume)\n")
print("| system | round | IOPS before | IOPS after | after / before | snap create s |")
print("|---|---|---|---|---|---|")
for sys_, rnd, b, a, c in after:
    b, a, c = float(b), float(a), float(c)
    res["after"].append({"system": sys_, "round": int(rnd), "before": b, "after": a, "create_s": c})
    print(f"| {sys_} | {rnd} | {b:,.0f} | {a:,.0f} | {a / b:.2f} | {c:.2f} |")
print(f"\n## snap create and snap rm of a {size} volume written whole (rm: every object cloned)\n")
print("| system | create s | rm s |")
print("|---|---|---|")
for sys_, c, r in times:
    res["times"][sys_] = {"create_s": float(c), "rm_s": float(r)}
    print(f"| {sys_} | {float(c):.2f} | {float(r):.2f} |")
many = [l.split() for l in open(f"{out}/many")]
if many:
    print(f"\n## 4 KiB random write QD32 IOPS with many snapshots (Basalt, {size} volumes)\n")
    print("| round | snapshots | IOPS | / none |")
    print("|---|---|---|---|")
    none = {r: float(i) for r, v, n, i in many if v == "none"}
    res["many"] = []
    for r, v, n, i in many:
        res["many"].append({"round": int(r), "snapshots": int(n), "iops": float(i)})
        print(f"| {r} | {n} | {float(i):,.0f} | {float(i) / none[r]:.2f} |")
print(f"\n## raw space used: a {size} volume, 5 x (snapshot + 10% overwritten), then all removed\n")
systems = sorted({s[0] for s in space})
steps = [s[1] for s in space if s[0] == systems[0]]
print("| step | " + " | ".join(f"{s} MiB" for s in systems) + " |")
print("|---|" + "---|" * len(systems))
for step in steps:
    row = []
    for s in systems:
        v = [int(x[2]) for x in space if x[0] == s and x[1] == step]
        row.append(f"{v[0] / 2**20:,.0f}" if v else "-")
        res["space"].setdefault(s, {})[step] = v[0] if v else None
    print(f"| {step} | " + " | ".join(row) + " |")
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
PY
echo "results in $out" >&2
