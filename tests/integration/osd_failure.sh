#!/usr/bin/env bash
# OSD failure detection with real daemons on loopback: three monitors and
# four OSDs on three "hosts" (osd.0 on h1, osd.1 on h2, osd.2 and osd.3 on
# h3). Checks, in order:
#   - losing the monitor leader does not mark any live OSD down (every
#     monitor hears the beacons, so the new leader knows who is alive);
#   - a killed OSD is marked down by its peers' reports, then out after
#     mon_osd_down_out_interval, and comes back up and in when restarted;
#   - a frozen OSD (SIGSTOP) is marked down; thawed, it sees that in the
#     map and boots again;
#   - with reporters on only one other host, missed beacons mark it down;
#   - an OSD that keeps going down is held down for a while when it boots.
#   osd_failure.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: osd_failure.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-osd-fail.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

cluster_conf_local "osd_beacon_interval = 300ms
osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 2s
mon_osd_beacon_grace = 4s
mon_osd_report_grace = 3s
mon_osd_down_out_interval = 4s
mon_osd_flap_window = 120s
mon_osd_flap_backoff = 3s
mon_osd_flap_backoff_max = 10s"
osd_conf_local 64M h1 h2 h3 h3
# "up in" flags of osd $1 as the monitors' map has them, e.g. "true true".
osd_state() {
	cli --timeout 10 --json osd ls 2>/dev/null | python3 -c "import json,sys
o=[o for o in json.load(sys.stdin) if o['id']==$1]
print('%s %s' % (str(o[0]['up']).lower(), str(o[0]['in']).lower()) if o else 'none none')"
}
# wait_state OSD "UP IN" SECONDS: prints how long it took, in ms.
wait_state() {
	local t0 now
	t0=$(date +%s%N)
	while :; do
		[ "$(osd_state "$1")" = "$2" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
		now=$(date +%s%N)
		[ $(( (now - t0) / 1000000000 )) -ge "$3" ] && return 1
		sleep 0.1
	done
}
marked() { grep -h "osd.$1 marked $2" "$dir"/mon.*.log | tail -1; }

mon_mkfs_all a b c
for m in a b c; do mon_start $m; done
leader >/dev/null || fail "no leader"
for i in 0 1 2 3; do osd_start $i; done
for i in 0 1 2 3; do wait_state $i "true true" 20 >/dev/null || fail "osd.$i did not come up"; done
echo "4 OSDs up and in"
cli status

# Placement: 3 copies on 3 different hosts for every PG (osd.2 and osd.3
# share h3). pgs_check EXPR: a Python condition on each PG (up, acting).
cli pool create rbd --size 3 --pg-num 32 >/dev/null || fail "pool create"
pgs_check() {
	cli --json pg ls rbd | python3 -c "import json,sys
host={0:'h1',1:'h2',2:'h3',3:'h3'}
bad=[p for p in json.load(sys.stdin) if not ($1)]
print(bad[:3]) if bad else None
sys.exit(1 if bad else 0)"
}
pgs_check "len(p['up'])==3 and len({host[o] for o in p['up']})==3 and p['acting']==p['up']" ||
	fail "placement is not 3 copies on 3 hosts"
echo "pool rbd: every PG on 3 OSDs on 3 hosts"

# 1. The leader dies; live OSDs stay up.
l=$(leader)
kill -9 "${pid[mon.$l]}"
wait "${pid[mon.$l]}" 2>/dev/null || true
sleep 5 # longer than mon_osd_beacon_grace
for i in 0 1 2 3; do [ "$(osd_state $i)" = "true true" ] || fail "osd.$i marked down after mon.$l died"; done
! grep -q "marked down" "$dir"/mon.*.log || fail "an OSD was marked down: $(grep -h 'marked down' "$dir"/mon.*.log)"
mon_start "$l"
echo "mon.$l (the leader) killed: after 5 s all four OSDs are still up"

# 2. A killed OSD: down by reports, out after the interval, back on restart.
kill -9 "${pid[osd.0]}"
wait "${pid[osd.0]}" 2>/dev/null || true
ms=$(wait_state 0 "false true" 15) || fail "osd.0 was not marked down"
marked 0 down | grep -q "reported by peers" || fail "osd.0 down, but not by reports: $(marked 0 down)"
echo "osd.0 killed: marked down by peer reports after $ms ms"
pgs_check "0 not in p['acting'] and p['acting']==[o for o in p['up'] if o!=0]" ||
	fail "osd.0 down but still acting"
cli status | grep -q "health:  .*1 OSD down: osd.0$" || fail "status: $(cli status)"
ms=$(wait_state 0 "false false" 15) || fail "osd.0 was not marked out"
marked 0 out | grep -q "down too long" || fail "osd.0 out, but not by the timer: $(marked 0 out)"
echo "osd.0 marked out $ms ms later (mon_osd_down_out_interval 4 s)"
# The only OSD of h1 is out: no third host, so two copies (undersized).
pgs_check "0 not in p['up'] and len(p['up'])==2" || fail "osd.0 out but still placed"
echo "placement follows: down leaves the acting sets, out leaves the PGs"
osd_start 0
ms=$(wait_state 0 "true true" 15) || fail "osd.0 did not come back up and in"
echo "osd.0 restarted: up and in again after $ms ms"

# 3. A frozen OSD is marked down; thawed, it boots again.
kill -STOP "${pid[osd.1]}"
ms=$(wait_state 1 "false true" 15) || fail "frozen osd.1 was not marked down"
echo "osd.1 frozen: marked down after $ms ms"
kill -CONT "${pid[osd.1]}"
ms=$(wait_state 1 "true true" 15) || fail "thawed osd.1 did not boot again"
grep -q "marks osd.1 down while it runs; booting again" "$dir/osd.1.log" || fail "osd.1 did not notice"
echo "osd.1 thawed: saw itself down in the map and is up again after $ms ms"

# 4. Reporters on one other host only: the beacons decide.
kill -9 "${pid[osd.1]}"
wait "${pid[osd.1]}" 2>/dev/null || true
wait_state 1 "false true" 15 >/dev/null || fail "osd.1 was not marked down"
kill -9 "${pid[osd.2]}" # its peers: osd.0 on h1; osd.3 shares its host h3
wait "${pid[osd.2]}" 2>/dev/null || true
ms=$(wait_state 2 "false true" 15) || fail "osd.2 was not marked down"
marked 2 down | grep -q "no beacons" || fail "osd.2 down, but not by beacons: $(marked 2 down)"
echo "osd.2 killed with reporters on one other host only: marked down for missed beacons after $ms ms"

# 5. Flapping: osd.0 goes down a second time within the window and is
# held down on its next boot.
kill -9 "${pid[osd.0]}"
wait "${pid[osd.0]}" 2>/dev/null || true
wait_state 0 "false true" 15 >/dev/null || fail "osd.0 was not marked down again"
osd_start 0
ms=$(wait_state 0 "true true" 20) || fail "osd.0 never came back after flapping"
grep -q "boot refused: osd.0 is flapping" "$dir/osd.0.log" || fail "osd.0's boot was not held"
echo "osd.0 down twice within the window: its boot was held, up after $ms ms"
cli status

# osd.3 ran throughout: it followed the map mostly by incremental updates
# (the commands since its epoch) and, stopped cleanly, says how many.
kill -TERM "${pid[osd.3]}"
wait "${pid[osd.3]}" || fail "osd.3 did not stop cleanly"
line=$(grep "map updates received" "$dir/osd.3.log") || fail "osd.3 did not report its map updates"
incs=$(echo "$line" | sed -n 's/.*, \([0-9]*\) incremental$/\1/p')
[ "${incs:-0}" -ge 5 ] || fail "osd.3: $line"
echo "osd.3: ${line#*: }"
echo PASS
