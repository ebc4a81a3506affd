#!/usr/bin/env bash
# What scrub costs: a local cluster (3 monitors, 3 OSDs of 4G, the 1 GiB
# volume `bench`, written whole first), then
#   1. the scrub rate: every OSD deep-scrubs every PG it leads, nothing
#      else running; MB/s per OSD = the bytes of PG copies each OSD read
#      (the pool's bytes: 3 copies on 3 OSDs) over the time until every
#      PG's deep-scrub stamp moved. Once with the default throttle and once unthrottled
#      (osd_scrub_max_bytes_per_sec = 0);
#   2. what clients keep: fio's 4 KiB random writes at QD32 through
#      basalt-nbd, with and without deep scrubs running on every OSD
#      (default throttle; started again as soon as they finish), A B A B
#      for --rounds rounds; IOPS, mean and p99 latency.
#
#   bench/scrub.sh [--runtime S] [--rounds N] [--dir DIR] [--build DIR]
#
# Defaults: 20 s per run, 3 rounds. Output in bench/results/scrub-TIME/:
# scrub.md (the table) and every fio JSON. Everything it starts it stops,
# by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
runtime=20 rounds=3 dir=/var/tmp build=
while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) runtime=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "scrub.sh: unknown option $1" >&2; usage ;;
	esac
done
. bench/lib.sh
bench_build
out=bench/results/scrub-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$dir/basalt-scrubbench.XXXXXX")
nbd_pid= loop_pid=
stop() {
	[ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null && wait "$loop_pid" 2>/dev/null
	[ -n "$nbd_pid" ] && kill "$nbd_pid" 2>/dev/null && wait "$nbd_pid" 2>/dev/null
	scripts/cluster.sh down --dir "$work/basalt" --purge >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap stop EXIT
trap 'echo "scrub.sh: failed at line $LINENO" >&2' ERR
cli() { "$build/basalt" "$@"; }

echo "== Basalt: 3 monitors, 3 OSDs of 4G; 1 GiB written" >&2
bench_cluster "$work/basalt" 4G
bench_nbd "$work/basalt-nbd.log"
uri=nbd://127.0.0.1:$nbd_port/bench
fio --name=prefill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=4 --size=1G \
	--output=/dev/null

# deep_stamps: "PGID STAMP" per PG of rbd (its last deep scrub).
deep_stamps() {
	cli --json pg ls rbd | python3 -c 'import json,sys
for p in json.load(sys.stdin): print(p["pgid"], p["last_deep_scrub"])'
}
# scrub_all: every OSD deep-scrubs every PG it leads.
scrub_all() { for i in 0 1 2; do cli osd scrub "$i" --deep >/dev/null; done; }
# scrub_rate LABEL: one deep scrub of everything, timed.
scrub_rate() {
	local before now
	before=$(deep_stamps)
	local t0=$SECONDS start
	start=$(date +%s.%N)
	scrub_all
	for _ in $(seq 1200); do
		sleep 0.5
		now=$(deep_stamps)
		# Every PG's stamp moved.
		python3 -c 'import sys
a = dict(l.split() for l in sys.argv[1].splitlines())
b = dict(l.split() for l in sys.argv[2].splitlines())
sys.exit(0 if all(int(b[k]) > int(a[k]) for k in a) else 1)' "$before" "$now" && break
	done
	local secs
	secs=$(python3 -c "import time; print(time.time() - $start)")
	[ $((SECONDS - t0)) -lt 600 ] || { echo "scrub.sh: the deep scrubs did not finish" >&2; exit 1; }
	# What each OSD's copies hold: every PG's bytes, 3 copies over 3 OSDs.
	cli --json pg ls rbd | python3 -c 'import json,sys
per = sum(p["bytes"] for p in json.load(sys.stdin))
label, secs = sys.argv[1], float(sys.argv[2])
print(f"| {label} | {secs:.1f} | {per / 1048576:.0f} | {per / 1048576 / secs:.0f} |")' "$1" "$secs"
}

{
	echo "## Scrub rate (deep, every PG of a 1 GiB volume x 3 copies, nothing else running)"
	echo
	echo "| throttle | seconds | MiB per OSD | MiB/s per OSD |"
	echo "|---|---:|---:|---:|"
} >"$out/scrub.md"
scrub_rate "osd_scrub_max_bytes_per_sec = 64M (default)" >>"$out/scrub.md"

# Unthrottled: the OSDs restarted with the limit off.
kill "$nbd_pid"; wait "$nbd_pid" 2>/dev/null || true; nbd_pid=
scripts/cluster.sh down --dir "$work/basalt" >/dev/null
printf '[osd]\nosd_scrub_max_bytes_per_sec = 0\n' >>"$work/basalt/basalt.conf"
BASALT_BUILD=$build scripts/cluster.sh up --dir "$work/basalt" >/dev/null
for _ in $(seq 150); do
	cli --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["pgs"].get("active+clean")==64 else 1)' && break
	sleep 0.2
done
scrub_rate "none (0)" >>"$out/scrub.md"
# Back to the default for the client runs.
scripts/cluster.sh down --dir "$work/basalt" >/dev/null
sed -i '/^osd_scrub_max_bytes_per_sec = 0$/d' "$work/basalt/basalt.conf"
BASALT_BUILD=$build scripts/cluster.sh up --dir "$work/basalt" >/dev/null
for _ in $(seq 150); do
	cli --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["pgs"].get("active+clean")==64 else 1)' && break
	sleep 0.2
done
bench_nbd "$work/basalt-nbd.log"
uri=nbd://127.0.0.1:$nbd_port/bench

# The client job, alone (A) and beside scrubs on every OSD (B).
job() { # job NAME
	fio --name=job --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 --size=1G \
		--time_based --runtime="$runtime" --ramp_time=2 --output-format=json \
		--output="$out/$1.json" >/dev/null
}
scrubbing() { # keeps deep scrubs going on every OSD until killed
	while :; do
		scrub_all
		sleep 1
	done
}
for r in $(seq "$rounds"); do
	echo "== round $r: without scrub" >&2
	job "alone-r$r"
	echo "== round $r: with deep scrubs on every OSD" >&2
	scrubbing >/dev/null 2>&1 &
	loop_pid=$!
	sleep 2
	job "scrub-r$r"
	kill "$loop_pid"; wait "$loop_pid" 2>/dev/null || true; loop_pid=
	cli --json status >"$out/status-r$r.json"
done

python3 - "$out" "$rounds" <<'PY' >>"$out/scrub.md"
import sys
sys.path.insert(0, "bench")
from nbd_table import side
out, rounds = sys.argv[1], int(sys.argv[2])
print()
print("## 4 KiB random writes, QD32, through basalt-nbd, with and without deep scrubs on every OSD")
print()
print("| round | IOPS alone | IOPS with scrub | ratio | mean µs alone / with | p99 µs alone / with |")
print("|---:|---:|---:|---:|---|---|")
ra = rs = 0
for r in range(1, rounds + 1):
    a = side(f"{out}/alone-r{r}.json", "randwrite")
    s = side(f"{out}/scrub-r{r}.json", "randwrite")
    ra += a[0]
    rs += s[0]
    print(f"| {r} | {a[0]:.0f} | {s[0]:.0f} | {s[0] / a[0]:.2f} | {a[2]:.0f} / {s[2]:.0f} | {a[3]:.0f} / {s[3]:.0f} |")
print(f"| all | {ra / rounds:.0f} | {rs / rounds:.0f} | {rs / ra:.2f} | | |")
PY
cat "$out/scrub.md"
