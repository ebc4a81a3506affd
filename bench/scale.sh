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
#   bench/scale.sh [--objects "N ..."] [--4m] [--grace DURATION] [--dir DIR]
#                  [--build DIR]
#
# --objects: the object counts per OSD, one full run each (default
# "100000 1000000"); --4m adds 4000000. A count whose files would not fit
# in DIR (/var/tmp) is skipped with a message. --grace sets
# osd_heartbeat_grace and mon_osd_beacon_grace (defaults 6s and 15s), for
# OSDs whose loop stalls longer than that under load. Every wait is
# bounded; a phase not done in time shows as ">S (not reached)", and when
# the cluster does not settle after the restart the phases after it are
# skipped. The table goes to stdout and to bench/results/scale-TIME/
# table.md, the daemons' logs to logs-N/ beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

counts="100000 1000000" with_4m=0 grace= rest=()
while [ $# -gt 0 ]; do
	case "$1" in
	--objects) counts=${2:?--objects takes a list of counts}; shift 2 ;;
	--4m) with_4m=1; shift ;;
	--grace) grace=${2:?--grace takes a duration such as 60s}; shift 2 ;;
	*) rest+=("$1"); shift ;;
	esac
done
bench_more_usage=' [--objects "N ..."] [--4m] [--grace DURATION]'
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
	[ -z "$grace" ] || sed -i "/^\[global\]\$/a osd_heartbeat_grace = $grace\nmon_osd_beacon_grace = $grace" "$conf"
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

# put KEY VALUE: a result of this N (read by table()).
put() { echo "$1 $2" >>"$vars"; }
# timed KEY T0 COMMAND...: puts the seconds from T0 to the end of COMMAND,
# or ">S (not reached)" when it failed; returns its status.
timed() {
	local key=$1 t0=$2
	shift 2
	if "$@"; then put "$key" "$(since "$t0")"; return 0; fi
	put "$key" ">$(since "$t0") (not reached)"
	return 1
}
# until_ok TIMEOUT COMMAND...: COMMAND again every 0.1 s until it succeeds.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
	return 1
}
reads() { # every object of $objs read, 300 s at most in all
	local r end=$((SECONDS + 300))
	for r in $objs; do
		until "$build/basalt" -c "$conf" --timeout 5 object get scale "$r" /dev/null >/dev/null 2>&1; do
			[ "$SECONDS" -lt "$end" ] || return 1
			sleep 0.1
		done
	done
}
marked_down() { grep -c "marked down" "$d/mon.a.log" || true; }

# measure_idle: RSS after the fill and 20 s of CPU without client I/O.
measure_idle() {
	local i c0=() c1=() r=()
	for i in 0 1 2; do r+=("$(rss "$(osd_pid "$i")")"); c0[i]=$(cpu_ticks "$(osd_pid "$i")"); done
	sleep 20
	for i in 0 1 2; do c1[i]=$(cpu_ticks "$(osd_pid "$i")"); done
	put rss_fill "${r[*]}"
	put cpu_ticks "$((c1[0] - c0[0])) $((c1[1] - c0[1])) $((c1[2] - c0[2]))"
}

# restart: osd.0 stopped and started; 0 once every PG is clean again.
restart() {
	local t0
	objs=$(primary_objects)
	put read_objects "$(echo "$objs" | wc -w)"
	put t_shutdown "$(stop_osd 0)"
	wait_down 0 || true
	start_osd 0
	t0=$(now)
	timed t_up "$t0" until_ok 300 osd_up 0 True || true
	timed t_read "$t0" reads || true
	timed t_clean "$t0" clean 600 || return 1
	put rss_restart "$(rss "$(osd_pid 0)")"
}

# absence: osd.2 away 60 s while 1% of the objects are rewritten.
absence() {
	local t_away changed t0 w r p o
	stop_osd 2 >/dev/null
	t_away=$SECONDS
	wait_down 2 || true
	changed=$((n / 100 > 0 ? n / 100 : 1))
	put changed "$changed"
	fill "$changed" >/dev/null || say "the rewrite of $changed objects had errors"
	while [ $((SECONDS - t_away)) -lt 60 ]; do sleep 1; done
	# From here: osd.2's counters start from 0 (it is down: absent now)
	w=$(wire_bytes) r=$(metric_sum basalt_osd_recovered_bytes_total)
	p=$(metric_sum basalt_osd_peering_bytes_total) o=$(metric_sum basalt_osd_recovered_objects_total)
	start_osd 2
	t0=$(now)
	# The PG states come from beacons (every second): clean only counts
	# once the rewritten objects were recovered (metrics: every second).
	timed t_peer "$t0" eval 'wait_metric "\$(metric_sum basalt_osd_recovered_objects_total) -ge $((o + changed))" 1200 && clean 600' || true
	put peer_wire "$(($(wire_bytes) - w))"
	put peer_recovered "$(($(metric_sum basalt_osd_recovered_bytes_total) - r))"
	put peer_bytes "$(($(metric_sum basalt_osd_peering_bytes_total) - p))"
}

# backfill: osd.1 replaced by an empty store (same id).
backfill() {
	local t0 r o
	stop_osd 1 >/dev/null
	wait_down 1 || true
	"$build/basalt-osd" --mkfs --force --device "$d/osd.1.img" --size "${size}M" >/dev/null
	r=$(metric_sum basalt_osd_recovered_bytes_total) o=$(metric_sum basalt_osd_recovered_objects_total)
	start_osd 1
	t0=$(now)
	# Done once osd.1 holds every object again (its store's count).
	timed t_backfill "$t0" eval 'wait_metric "\$(metric 1 basalt_osd_objects) -ge $n" 7200 && clean 600' || true
	put backfill_bytes "$(($(metric_sum basalt_osd_recovered_bytes_total) - r))"
	put backfill_objects "$(($(metric_sum basalt_osd_recovered_objects_total) - o))"
}

run() {
	local n=$1 size avail_kib need_kib objs vars=$out/scale-$1.vars t_start=$SECONDS
	need_kib=$((3 * (n * 4 + n * 5 / 4 + 300 * 1024)))
	avail_kib=$(df -k --output=avail "$work" | tail -1)
	if [ "$need_kib" -gt "$avail_kib" ]; then
		say "$n objects per OSD need ~$((need_kib / 1048576)) GiB in $work, $((avail_kib / 1048576)) GiB free: skipped"
		return 0
	fi
	say "== $n objects per OSD"
	: >"$vars"
	put n "$n"
	put grace "${grace:-default}"
	cluster "$n"
	put rss_empty "$(rss "$(osd_pid 1)")"
	say "filling"
	put fill_s "$(fill "$n" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')"
	clean 600
	sleep 5 # the journal flushes; no client I/O from here on
	measure_idle
	put downs_before "$(marked_down)"
	say "restart of osd.0"
	if restart; then
		say "osd.2 away for 60 s while 1% of the objects change"
		absence
		# Recovery writes a whole 128 KiB block per object (see
		# bench/README.md): a backfill the disk cannot hold would turn
		# the stores read-only, so it is skipped.
		need=$((n * 131072 / 10 * 11))
		avail=$(df --output=avail -B1 "$d" | tail -1)
		if [ "$avail" -lt "$need" ]; then
			say "backfill skipped: it writes $((need >> 30)) GiB, $((avail >> 30)) GiB free in $d"
		else
			say "osd.1 replaced by an empty store"
			backfill
		fi
	else
		say "the cluster did not settle after the restart: the rest is skipped"
	fi
	put downs "$(($(marked_down) - $(awk '$1 == "downs_before" {print $2}' "$vars")))"
	put run_s "$((SECONDS - t_start))"
	mkdir -p "$out/logs-$n" && cp "$d"/*.log "$out/logs-$n/" 2>/dev/null || true
	bench/scale_table.py "$vars" | tee -a "$out/table.md"
	# Removing sparse files of millions of extents takes the kernel
	# minutes (at 1M objects): the table is out first.
	say "removing the $n-object cluster"
	scripts/cluster.sh down --dir "$d" --purge >/dev/null
}

say "results in $out"
for n in $counts; do run "$n"; done
