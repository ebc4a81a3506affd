#!/usr/bin/env bash
# Slow operations as a user sees them: 3 monitors, 3 OSDs, pool rbd of
# size 3, the default osd_op_complaint_time (30 s), and failure detection
# slowed down so that a frozen OSD stays up in the map
# (mon_osd_min_down_reporter_hosts = 3: with three hosts only two can
# report; mon_osd_beacon_grace = 120s). An operation's age counts from the
# client's first attempt: the PGs waiting on the frozen OSD peer again
# and the client resends, but it is the same operation, still waiting.
# Under 4 KiB random writes (bench/volume_load, QD8), osd.2 is frozen with
# SIGSTOP for 40 s:
#  - `basalt status` health shows "N slow ops on osd.X, oldest S s
#    (waiting for ...)" for an OSD that waits on osd.2, and --json status
#    has its count, age and what it waits for; that OSD logs the slow
#    operation;
#  - after SIGCONT the warning clears and every PG is active+clean again;
#    the load ran to its end without an error.
# The health line is sampled every second while osd.2 is frozen and the
# timeline is printed.
#   slow_ops.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: slow_ops.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-slowops.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
t0=$SECONDS

cluster_up_local 128M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
mon_osd_min_down_reporter_hosts = 3
mon_osd_beacon_grace = 120s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm --size 32M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

runtime=50
"$build/bench/volume_load" -c "$dir/basalt.conf" --keyring "$dir/keyring" --volume vm \
	--rw randwrite --bs 4K --iodepth 8 --runtime $runtime --time_based --ramp_time 0 \
	--output "$dir/load.json" 2>"$dir/load.err" &
pid[load]=$!
load_start=$SECONDS
sleep 3
kill -0 "${pid[load]}" 2>/dev/null || fail "the load ended early: $(cat "$dir/load.err")"

kill -STOP "${pid[osd.2]}"
stop=$SECONDS
echo "osd.2 frozen (SIGSTOP) under load"
slow_re='[0-9]+ slow ops? on osd\.[01], oldest [0-9]+ s \(waiting for [^)]+\)'
first= timeline= shown=0 samples=0
while [ $((SECONDS - stop)) -lt 40 ]; do
	h=$(js "s['health'], '|', s['osd']['up']") || fail "status while osd.2 is frozen"
	up=${h##*| }
	h=${h% |*}
	[ "$up" = 3 ] || fail "osd.2 was marked down while frozen (the test needs it up): $h"
	samples=$((samples + 1))
	if [[ "$h" =~ $slow_re ]]; then
		shown=$((shown + 1))
		timeline+="+"
		if [ -z "$first" ]; then
			first=$((SECONDS - stop))
			echo "after $first s: health: $h"
			osd=$(sed -E 's/.*slow ops? on osd\.([01]).*/\1/' <<<"${BASH_REMATCH[0]}")
			js "[o for o in s['fullness']['osds'] if o['id']==$osd][0]" >"$dir/osd.json"
			python3 - "$dir/osd.json" <<'PY' || fail "--json status of the OSD with slow ops: $(cat "$dir/osd.json")"
import ast, sys
o = ast.literal_eval(open(sys.argv[1]).read())
assert o["slow_ops"] > 0 and o["slow_oldest_ms"] >= 30000 and o["slow_waiting_for"], o
print(f"  --json: osd.{o['id']} slow_ops {o['slow_ops']}, slow_oldest_ms {o['slow_oldest_ms']}, "
      f"slow_waiting_for '{o['slow_waiting_for']}'")
PY
		fi
	else
		timeline+="."
		[ -n "$first" ] || [ $((SECONDS - stop)) -lt 38 ] ||
			fail "no slow ops in health 38 s after osd.2 froze: $h"
	fi
	sleep 1
done
[ -n "$first" ] || fail "no slow ops in health while osd.2 was frozen 40 s: $(cli status)"
echo "health each second while frozen (+ slow ops shown, . not): $timeline ($shown of $samples)"
[[ "$(js "s['health']")" =~ $slow_re ]] && echo "just before SIGCONT: $(js "s['health']")"
logged=$(grep -h "warn .*slow operation: a write from client [0-9a-f]* is [0-9]* s old, waiting for " \
	"$dir/osd.$osd.log" || true)
[ -n "$logged" ] || fail "osd.$osd did not log its slow operations"
echo "osd.$osd logged $(wc -l <<<"$logged") slow operations, first: ${logged%%$'\n'*}"

kill -CONT "${pid[osd.2]}"
cont=$SECONDS
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==16 and 'slow op' not in s['health']" 30 \
	"slow ops cleared and PGs active+clean after SIGCONT"
echo "after SIGCONT: health '$(js "s['health']")' and every PG active+clean within $((SECONDS - cont)) s"
grep -q "osd.2 marked down" "$dir"/mon.*.log && fail "osd.2 was marked down: $(grep -h "osd.2 marked down" "$dir"/mon.*.log)"

for _ in $(seq $((runtime + 30 - (SECONDS - load_start)))); do
	kill -0 "${pid[load]}" 2>/dev/null || break
	sleep 1
done
kill -0 "${pid[load]}" 2>/dev/null && fail "the load did not end $((SECONDS - load_start)) s after it started"
wait "${pid[load]}" || fail "the load failed: $(cat "$dir/load.err")"
unset 'pid[load]'
python3 - "$dir/load.json" <<'PY' || fail "the load: $(cat "$dir/load.json")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
w = j["write"]
assert j["error"] == 0 and w["total_ios"] > 0, j
print(f"the load: {w['total_ios']} writes of 4 KiB, no error, "
      f"99th percentile {w['clat_ns']['percentile']['99.000000'] / 1e9:.1f} s")
PY
echo "PASS ($((SECONDS - t0)) s)"
