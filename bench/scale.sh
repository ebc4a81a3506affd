#!/usr/bin/env bash
# What an OSD costs as it fills with objects (issue 21): three OSDs on
# sparse files on this host, a pool of size 3 (64 PGs), filled with N
# objects of 4 KiB (one 128 KiB block each) by real writes, then:
#   - RSS per OSD (VmRSS) -> bytes per object, GiB per TiB of blocks;
#   - restart to serving: osd.0 stopped with SIGTERM (waited for), started,
#     timed until the map shows it up, until a read of objects it is
#     primary of succeeds, and until every PG is active+clean;
#   - CPU of an idle OSD (utime + stime over 20 s without client I/O);
#   - peering after absence: osd.2 stopped for 60 s while 1% of the
#     objects are rewritten, started, timed until active+clean, with the
#     bytes the OSDs exchanged meanwhile (basalt_osd_peering_bytes_total
#     where the OSDs export it, and basalt_osd_msgr_bytes_total) and the
#     bytes recovered (basalt_osd_recovered_bytes_total);
#   - full backfill of a replaced OSD: osd.1 stopped, formatted again
#     (same id), started, timed until active+clean; MB/s = bytes
#     recovered / time.
# Not in CI: it takes long (see bench/README.md, "Scale").
#
#   bench/scale.sh [--objects "N ..."] [--4m] [--dir DIR] [--build DIR]
#
# --objects: the object counts per OSD, one full run each (default
# "100000 1000000"); --4m adds 4000000. A count whose files would not fit
# in DIR (/var/tmp) is skipped with a message. The table goes to stdout
# and to bench/results/scale-TIME/table.md, the daemons' logs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

counts="100000 1000000" with_4m=0 rest=()
while [ $# -gt 0 ]; do
	case "$1" in
	--objects) counts=${2:?--objects takes a list of counts}; shift 2 ;;
	--4m) with_4m=1; shift ;;
	*) rest+=("$1"); shift ;;
	esac
done
bench_more_usage=' [--objects "N ..."] [--4m]'
bench_options scale ${rest[@]+"${rest[@]}"}
[ "$with_4m" = 0 ] || counts="$counts 4000000"
for n in $counts; do
	case "$n" in '' | *[!0-9]* | 0*) echo "bench/scale.sh: --objects takes counts such as \"100000 1000000\", not '$n'" >&2; exit 2 ;; esac
done
bench_build objects
bench_workspace scale
d=$work/basalt conf=$work/basalt/basalt.conf
cli() { "$build/basalt" -c "$conf" --timeout 10 "$@"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
say() { echo "scale: $*" >&2; }

osd_pid() { awk -v n="osd.$1" '$1 == n {print $2}' "$d/pids"; }
alive() { # PID runs and is not a zombie
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ] && [ "${s%% *}" != X ]
}
rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{sub(/.*\) /, ""); split($0, f, " "); print f[12] + f[13]}' "/proc/$1/stat"; }

# stop_osd ID: SIGTERM, waits for the exit (300 s, then SIGKILL: said);
# prints the seconds it took.
stop_osd() {
	local p t0 i
	p=$(osd_pid "$1") t0=$(now)
	kill -TERM "$p"
	for i in $(seq 3000); do alive "$p" || break; sleep 0.1; done
	if alive "$p"; then say "osd.$1 still runs 300 s after SIGTERM: killed"; kill -KILL "$p"; fi
	wait "$p" 2>/dev/null || true
	awk -v n="osd.$1" '$1 != n' "$d/pids" >"$d/pids.new" && mv "$d/pids.new" "$d/pids"
	since "$t0"
}

# start_osd ID: as scripts/cluster.sh starts it (its PID in DIR/pids, so
# `cluster.sh down` stops it), without waiting.
start_osd() {
	"$build/basalt-osd" --id "$1" -c "$conf" --log-file "$d/osd.$1.log" </dev/null >>"$d/osd.$1.log" 2>&1 &
	echo "osd.$1 $!" >>"$d/pids"
}

# wait_json EXPR TIMEOUT WHAT: until EXPR holds of `basalt --json status`
# as s (TIMEOUT s, then fails).
wait_json() {
	local t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		cli --json status 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" && return 0
		sleep 0.2
	done
	say "$3: not after $2 s"
	return 1
}
# wait_down ID: until the map shows osd.ID down (60 s at most).
wait_down() {
	for _ in $(seq 600); do osd_up "$1" False && return 0; sleep 0.1; done
	say "osd.$1 is still up in the map 60 s after it stopped"
	return 1
}
# wait_metric TEST TIMEOUT: until `[ TEST ]` (evaluated again each time:
# metric calls in it are escaped) holds, polled every 0.2 s.
wait_metric() {
	local t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		eval "[ $1 ]" && return 0
		sleep 0.2
	done
	say "not after $2 s: $1"
	return 1
}
clean() { wait_json "s['pgs'].get('active+clean') == 64 and s['osd']['up'] == 3" "$1" "active+clean"; }
osd_up() { # ID UP(True|False): the map says so
	cli --json osd ls 2>/dev/null | python3 -c "import json,sys; sys.exit(0 if any(o['id'] == $1 and o['up'] == $2 for o in json.load(sys.stdin)) else 1)"
}

# metric ID NAME[{LABELS}]: the value osd.ID exports (0 when absent).
metric() {
	local port
	port=$(awk -v s="[osd.$1]" '$0 == s {f = 1; next} /^\[/ {f = 0} f && /^metrics_addr/ {sub(/.*:/, ""); print}' "$conf")
	{ curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null || true; } | awk -v n="$2" '$1 == n {v = $2} END {printf "%.0f\n", v + 0}'
}
# metric_sum NAME: over the three OSDs.
metric_sum() { local t=0 i; for i in 0 1 2; do t=$((t + $(metric "$i" "$1"))); done; echo "$t"; }
wire_bytes() { echo $(($(metric_sum 'basalt_osd_msgr_bytes_total{dir="sent"}') + $(metric_sum 'basalt_osd_msgr_bytes_total{dir="received"}'))); }

# The objects osd.0 is primary of, among the first 256 (their PG by the
# CLI's `object stat`): what its restart is timed to read.
primary_objects() {
	local k found=0
	for k in $(seq 0 255); do
		cli --json object stat scale "be:$(printf %x "$k")" 2>/dev/null |
			python3 -c "import json,sys; a=json.load(sys.stdin)['acting']; sys.exit(0 if a and a[0] == 0 else 1)" ||
			continue
		printf 'be:%x\n' "$k"
		found=$((found + 1))
		[ "$found" -lt 4 ] || break
	done
}

# cluster N: a fresh cluster whose OSD files fit N objects with room to
# spare (sparse: only what is written takes space), pool `scale`. Sets
# `size` (MiB per OSD file).
cluster() {
	local n=$1 ports i
	size=$(((n * 5 / 4 + 4096) * 129 / 1024 + 256)) # MiB: blocks + their metadata slots + journal
	mkdir -p "$d"
	for i in 0 1 2; do
		truncate -s "${size}M" "$d/osd.$i.img"
		"$build/basalt-osd" --mkfs --device "$d/osd.$i.img" --size "${size}M" >/dev/null
	done
	BASALT_BUILD=$build scripts/cluster.sh up --dir "$d" >/dev/null
	scripts/cluster.sh down --dir "$d" >/dev/null
	# The 60 s absence must not mark osd.2 out; metrics for the byte counts.
	sed -i 's/^mon_osd_down_out_interval = .*/mon_osd_down_out_interval = 30m/' "$conf"
	read -r -a ports < <(scripts/free-ports 3)
	for i in 0 1 2; do sed -i "/^\[osd\.$i\]\$/a metrics_addr = 127.0.0.1:${ports[$i]}" "$conf"; done
	BASALT_BUILD=$build scripts/cluster.sh up --dir "$d" >/dev/null
	cli pool create scale --size 3 --pg-num 64 >/dev/null
	clean 60
}

fill() { # N: objects 0..N-1 written once; the fill's JSON line
	"$build/bench/objects" -c "$conf" --keyring "$d/keyring" --pool scale --op write --bs 4096 \
		--qd 64 --objects "$1" --fill
}

run() {
	local n=$1 size avail_kib need_kib rss0 fill_json i r t_up t_read t_clean
	need_kib=$((3 * (n * 4 + n * 5 / 4 + 300 * 1024)))
	avail_kib=$(df -k --output=avail "$work" | tail -1)
	if [ "$need_kib" -gt "$avail_kib" ]; then
		say "$n objects per OSD need ~$((need_kib / 1048576)) GiB in $work, $((avail_kib / 1048576)) GiB free: skipped"
		return 0
	fi
	local t_start=$SECONDS
	say "== $n objects per OSD"
	cluster "$n"
	rss0=$(rss "$(osd_pid 1)")
	say "filling"
	fill_json=$(fill "$n")
	clean 600
	sleep 5 # the journal flushes; no client I/O from here on
	local rss_fill=() cpu0=() cpu1=()
	for i in 0 1 2; do rss_fill[i]=$(rss "$(osd_pid "$i")"); cpu0[i]=$(cpu_ticks "$(osd_pid "$i")"); done
	sleep 20
	for i in 0 1 2; do cpu1[i]=$(cpu_ticks "$(osd_pid "$i")"); done

	say "restart of osd.0"
	local objs t_shutdown t0
	objs=$(primary_objects)
	t_shutdown=$(stop_osd 0)
	wait_down 0
	start_osd 0
	t0=$(now)
	for _ in $(seq 3000); do osd_up 0 True && break; sleep 0.1; done
	t_up=$(since "$t0")
	for r in $objs; do
		for _ in $(seq 600); do cli object get scale "$r" /dev/null >/dev/null 2>&1 && break; sleep 0.1; done
	done
	t_read=$(since "$t0")
	clean 600
	t_clean=$(since "$t0")
	local rss_restart
	rss_restart=$(rss "$(osd_pid 0)")

	say "osd.2 away for 60 s while 1% of the objects change"
	local t_away changed t_peer wire1 rec1 peer1
	stop_osd 2 >/dev/null
	t_away=$SECONDS
	wait_down 2
	changed=$((n / 100 > 0 ? n / 100 : 1))
	fill "$changed" >/dev/null
	while [ $((SECONDS - t_away)) -lt 60 ]; do sleep 1; done
	# From here: osd.2's counters start from 0 (it is down: absent now)
	local w02 r02 p02 o02
	w02=$(wire_bytes) r02=$(metric_sum basalt_osd_recovered_bytes_total)
	p02=$(metric_sum basalt_osd_peering_bytes_total)
	o02=$(metric_sum basalt_osd_recovered_objects_total)
	start_osd 2
	t0=$(now)
	# The PG states come from beacons (every second): clean only counts
	# once the rewritten objects were recovered (metrics: every second).
	wait_metric "\$(metric_sum basalt_osd_recovered_objects_total) -ge $((o02 + changed))" 1200
	clean 1200
	t_peer=$(since "$t0")
	wire1=$(wire_bytes) rec1=$(metric_sum basalt_osd_recovered_bytes_total)
	peer1=$(metric_sum basalt_osd_peering_bytes_total)

	say "osd.1 replaced by an empty store"
	local t_fill rec_b0 t_backfill rec_b1 rob0 rob1
	stop_osd 1 >/dev/null
	wait_down 1
	"$build/basalt-osd" --mkfs --force --device "$d/osd.1.img" --size "${size}M" >/dev/null
	rec_b0=$(metric_sum basalt_osd_recovered_bytes_total)
	rob0=$(metric_sum basalt_osd_recovered_objects_total)
	start_osd 1
	t0=$(now)
	# Done once osd.1 holds every object again (its store's count).
	wait_metric "\$(metric 1 basalt_osd_objects) -ge $n" 7200
	clean 600
	t_backfill=$(since "$t0")
	rec_b1=$(metric_sum basalt_osd_recovered_bytes_total)
	rob1=$(metric_sum basalt_osd_recovered_objects_total)
	cp "$d"/*.log "$out/" 2>/dev/null || true
	scripts/cluster.sh down --dir "$d" --purge >/dev/null
	t_fill=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$fill_json")

	python3 - "$n" "$rss0" "${rss_fill[*]}" "$rss_restart" "${cpu0[*]}" "${cpu1[*]}" \
		"$t_shutdown" "$t_up" "$t_read" "$t_clean" "$changed" "$t_peer" \
		"$((wire1 - w02))" "$((rec1 - r02))" "$((peer1 - p02))" \
		"$t_backfill" "$((rec_b1 - rec_b0))" "$t_fill" "$((SECONDS - t_start))" "$objs" "$((rob1 - rob0))" <<'EOF' | tee -a "$out/table.md"
import os, sys
a = sys.argv[1:]
n = int(a[0]); rss0 = int(a[1]); rss = [int(x) for x in a[2].split()]; rss_r = int(a[3])
c0 = [int(x) for x in a[4].split()]; c1 = [int(x) for x in a[5].split()]
hz = os.sysconf("SC_CLK_TCK")
mib = lambda b: b / 2**20
per_tib = lambda b: b / (n * 128 * 1024) * 1024  # GiB of RSS per TiB of blocks
rows = [
    ("objects per OSD (4 KiB each, one 128 KiB block)", f"{n:,}"),
    ("fill: seconds / objects per s (3 copies)", f"{float(a[17]):.1f} / {n / float(a[17]):,.0f}"),
    ("RSS of an empty OSD (MiB)", f"{mib(rss0):.1f}"),
    ("RSS per OSD after the fill (MiB, osd.0/1/2)", " / ".join(f"{mib(r):.1f}" for r in rss)),
    ("RSS of osd.0 after its restart (MiB)", f"{mib(rss_r):.1f}"),
    ("bytes per object (RSS after the fill - empty, / N)", f"{(sum(rss) / 3 - rss0) / n:.0f}"),
    ("GiB of RSS per TiB of blocks (whole RSS after the fill)", f"{per_tib(sum(rss) / 3):.2f}"),
    ("GiB of RSS per TiB of blocks (after restart)", f"{per_tib(rss_r):.2f}"),
    ("idle OSD CPU (% of a core, 20 s, osd.0/1/2)", " / ".join(f"{(y - x) / hz / 20 * 100:.2f}" for x, y in zip(c0, c1))),
    ("osd.0 SIGTERM to exit (s)", a[6]),
    ("osd.0 start to up in the map (s)", a[7]),
    (f"osd.0 start to a read of objects it is primary of ({len(a[19].split())} objects) (s)", a[8]),
    ("osd.0 start to all PGs active+clean (s; PG states come by beacon, ~1 s late)", a[9]),
    (f"osd.2 away 60 s, {int(a[10]):,} objects rewritten: start to active+clean (s)", a[11]),
    ("  bytes the OSDs sent + received meanwhile (msgr, whole cluster)", f"{int(a[12]):,}"),
    ("  basalt_osd_peering_bytes_total grew by", f"{int(a[14]):,}" if int(a[14]) else "not exported"),
    ("  bytes recovered", f"{int(a[13]):,}"),
    ("osd.1 replaced (empty store): start to active+clean (s)", a[15]),
    ("  bytes recovered (basalt_osd_recovered_bytes_total) / MB/s", f"{int(a[16]):,} / {int(a[16]) / float(a[15]) / 1e6:.1f}"),
    ("  objects recovered / per s / MB/s of data written (4 KiB each)", f"{int(a[20]):,} / {int(a[20]) / float(a[15]):,.0f} / {int(a[20]) * 4096 / float(a[15]) / 1e6:.1f}"),
    ("whole run for this N (s)", a[18]),
]
print(f"\n| {n:,} objects per OSD | |\n|---|---:|")
for k, v in rows:
    print(f"| {k} | {v} |")
EOF
}

say "results in $out"
for n in $counts; do run "$n"; done
