#!/usr/bin/env bash
# Recovery and data movement with real daemons: 3 monitors and 4 OSDs on
# three pretend hosts (osd.2 and osd.3 share host h2), a pool of size 3.
#  - Out and back: osd.1 stops for longer than the down-out interval and
#    is marked out while objects change; when it returns it gets only the
#    objects that changed (recovery counters against what was written),
#    at the recovery rate limit while a client writes and reads, and
#    every PG is active+clean again.
#  - Capacity: osd.3 is marked out for good: its PGs move to osd.2 (the
#    other OSD of its host), backfilled beside client I/O, keeping three
#    copies on three hosts, and osd.3 deletes its stray copies; stopped,
#    it can then be removed (and could not be while up).
#   recovery.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: recovery.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-recovery.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
osd_beacon_interval = 500ms
osd_recovery_max_bytes_per_sec = 1M
mon_osd_down_out_interval = 4s"
osd_conf_local 256M h0 h1 h2 h2
read -r metrics_port < <(free_ports 1) # osd.1's: the bytes it receives
sed -i "/^\[osd\.1\]\$/a metrics_addr = 127.0.0.1:$metrics_port" "$dir/basalt.conf"
received() {
	curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$dir/metrics" || fail "osd.1's metrics"
	awk '/^basalt_osd_msgr_bytes_total\{dir="received"\}/ {print $2}' "$dir/metrics"
}
put() { cli --timeout 30 object put rbd "$1" "$2" >/dev/null || fail "put $1"; }
check_all() {
	for f in "$dir"/obj.*; do
		k=${f##*.}
		cli object get rbd "a:$k" "$dir/back" >/dev/null || fail "get $k ($1)"
		cmp -s "$f" "$dir/back" || fail "object $k differs ($1)"
	done
}
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2 3; do osd_start "$i"; done
wait_for "s['osd']['up']==4" 20 "OSDs up"
cli pool create rbd --size 3 --pg-num 32 >/dev/null
wait_for "s['pgs'].get('active+clean')==32" 30 "PGs active+clean"
for k in $(seq 0 59); do
	head -c 65536 /dev/urandom >"$dir/obj.$(printf %x "$k")"
	put "a:$(printf %x "$k")" "$dir/obj.$(printf %x "$k")"
done
check_all "written"
echo "60 objects written, 32 PGs active+clean"

# --- out and back -------------------------------------------------------------
osd_kill 1
wait_for "s['osd']['in']==3" 30 "osd.1 marked out after the down-out interval"
before=$(js "s['recovery']['recovered_objects']")
before_bytes=$(js "s['recovery']['recovered_bytes']")
for k in $(seq 0 29) $(seq 60 64); do # 30 overwritten, 5 new
	head -c 65536 /dev/urandom >"$dir/obj.$(printf %x "$k")"
	put "a:$(printf %x "$k")" "$dir/obj.$(printf %x "$k")"
done
written=$((35 * 65536))
wait_for "s['pgs'].get('active+clean', 0) + s['pgs'].get('active+degraded+undersized', 0) == 32" 30 \
	"PGs settled with osd.1 out"
osd_start 1
# Recovery runs at its rate limit (1 MiB/s here, ~4.6 MB to move), beside
# client I/O, and shows its progress.
wait_for "s['recovery']['objects_left'] > 0" 30 "recovery under way"
left=$(js "s['recovery']['objects_left']")
head -c 65536 /dev/urandom >"$dir/obj.4b"
put a:4b "$dir/obj.4b"
cli object get rbd a:4b "$dir/back" >/dev/null && cmp -s "$dir/obj.4b" "$dir/back" ||
	fail "client I/O during recovery"
wait_for "s['osd']['in']==4 and s['pgs'].get('active+clean')==32" 60 "back to active+clean"
moved=$(( $(js "s['recovery']['recovered_objects']") - before ))
[ "$moved" -eq 35 ] || fail "osd.1 received $moved objects; 35 changed while it was away"
# Each object moves as its written chunks (64 KiB of a 128 KiB block).
# The beacons carry the counters: wait for the last ones.
wait_for "s['recovery']['recovered_bytes'] - $before_bytes >= $written" 10 "recovered bytes counted"
bytes=$(( $(js "s['recovery']['recovered_bytes']") - before_bytes ))
[ "$bytes" -eq "$written" ] || fail "recovery moved $bytes bytes for the $written written"
# and on the wire: what osd.1 received since its start (recovery, peering,
# heartbeats, the one client write) is well under two whole blocks each.
rx=$(received)
[ "${rx%.*}" -lt $((written * 3 / 2)) ] ||
	fail "osd.1 received $rx bytes since its start for the $written bytes it lacked"
check_all "osd.1 back"
echo "out and back: osd.1 was out; on return it received $moved of 66 objects (the 35 that" \
	"changed; $written bytes written while away, $bytes bytes moved: their written chunks," \
	"not whole blocks; osd.1 received $rx bytes in all), at the rate limit, with $left objects left when a client wrote and" \
	"read meanwhile"

# --- capacity -------------------------------------------------------------------
cli osd rm 3 2>"$dir/err" >/dev/null && fail "an up OSD was removed"
grep -q "is up: stop it" "$dir/err" || fail "rm while up: $(cat "$dir/err")"
before=$(js "s['recovery']['recovered_objects']")
cli osd out 3 >/dev/null
# Client I/O goes on while osd.2 is filled.
for k in $(seq 65 74); do
	head -c 65536 /dev/urandom >"$dir/obj.$(printf %x "$k")"
	put "a:$(printf %x "$k")" "$dir/obj.$(printf %x "$k")"
done
wait_for "s['pgs'].get('active+clean')==32" 90 "clean without osd.3"
moved=$(( $(js "s['recovery']['recovered_objects']") - before ))
[ "$moved" -gt 0 ] || fail "nothing moved off osd.3"
# osd.3, still running, deletes the copies nobody will read again.
for _ in $(seq 100); do grep -q "stray copy is gone" "$dir/osd.3.log" && break; sleep 0.2; done
grep -q "stray copy is gone" "$dir/osd.3.log" || fail "osd.3 kept its stray copies"
sleep 1
osd_kill 3
left=$("$build/basalt-osd" --dump --json --device "$dir/osd.3.img" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])')
[ "$left" -le 32 ] || fail "osd.3 still holds $left objects (at most its 32 PG marks expected)"
wait_for "s['osd']['up']==3" 30 "osd.3 down"
cli osd rm 3 >/dev/null || fail "osd rm 3 after its PGs moved"
cli --json pg ls rbd | python3 -c '
import json, sys
hosts = {0: "h0", 1: "h1", 2: "h2"}
for p in json.load(sys.stdin):
    a = p["acting"]
    assert len(a) == 3 and len({hosts[o] for o in a}) == 3, p
    assert p["state"] == "active+clean", p
' || fail "placement after removal: $(cli pg ls rbd)"
check_all "osd.3 removed"
echo "capacity: osd.3 out, $moved objects backfilled to osd.2; removed; 32 PGs keep 3 copies on 3 hosts"
echo PASS
