#!/usr/bin/env bash
# Peering by what changed (osd/pg_log.c) with real daemons: 3 monitors and
# 3 OSDs, a pool of size 3 with 16 PGs, metrics on every OSD.
#  - osd.1 stopped cleanly (SIGTERM) writes its PG logs out; while it is
#    away 20 objects change and 5 are deleted; back, no PG is compared
#    whole (basalt_osd_peerings_total{kind="full"} grows on no OSD, kind
#    "log" does), the PGs become active+clean and everything reads back;
#  - osd.1 killed -9 (its logs lost) and restarted: its PGs are compared
#    whole (kind="full" grows) and everything still reads back;
#  - every store is clean (fsck) and holds the same objects (the deleted
#    ones are gone from osd.1 too).
#   peering_log.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: peering_log.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-peerlog.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
command -v curl >/dev/null || fail "curl is missing (scripts/install-deps.sh installs it)"

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
mon_osd_down_out_interval = 0"
osd_conf_local 256M h0 h1 h2
read -r -a mport < <(free_ports 3)
for i in 0 1 2; do
	sed -i "/^\[osd\.$i\]\$/a metrics_addr = 127.0.0.1:${mport[$i]}" "$dir/basalt.conf"
done
put() { cli --timeout 30 object put rbd "$1" "$2" >/dev/null 2>"$dir/put.err" || { cat "$dir/put.err" >&2; return 1; }; }
# peerings KIND: the sum over the OSDs up of basalt_osd_peerings_total{kind=KIND}.
peerings() {
	local total=0 n i
	for i in 0 1 2; do
		n=$( { curl -sf "http://127.0.0.1:${mport[$i]}/metrics" 2>/dev/null || true; } |
			sed -n "s/^basalt_osd_peerings_total{kind=\"$1\"} \([0-9]*\)\$/\1/p")
		total=$((total + ${n:-0}))
	done
	echo "$total"
}
check_all() {
	for k in $(seq 0 39); do
		[ -e "$dir/obj.$k" ] || continue
		cli object get rbd "a:$k" "$dir/back" >/dev/null || fail "get $k ($1)"
		cmp -s "$dir/obj.$k" "$dir/back" || fail "object $k differs ($1)"
	done
	for k in 35 36 37 38 39; do
		if cli --timeout 5 object get rbd "a:$k" "$dir/back" 2>/dev/null; then
			fail "deleted object $k reads back ($1)"
		fi
	done
}
cluster_start
cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 20 "PGs active+clean"
for k in $(seq 0 39); do
	head -c 8192 /dev/urandom >"$dir/obj.$k"
	put "a:$k" "$dir/obj.$k" || fail "put $k"
done

# A clean stop: the logs go to disk, and come back with the OSD.
kill -TERM "${pid[osd.1]}"
rc=0; wait "${pid[osd.1]}" || rc=$?
[ "$rc" = 0 ] || fail "osd.1 did not stop cleanly (exit $rc): $(tail -5 "$dir/osd.1.log")"
grep -q "writing the logs of 16 PGs" "$dir/osd.1.log" ||
	fail "osd.1 did not write its logs: $(tail -5 "$dir/osd.1.log")"
wait_for "s['osd']['up']==2" 20 "osd.1 marked down"
for k in $(seq 0 19); do
	head -c 8192 /dev/urandom >"$dir/obj.$k"
	put "a:$k" "$dir/obj.$k" || fail "put $k with osd.1 away"
done
for k in 35 36 37 38 39; do
	cli --timeout 30 object rm rbd "a:$k" >/dev/null || fail "rm $k"
	rm "$dir/obj.$k"
done
wait_for "s['pgs'].get('active+degraded+undersized')==16" 20 "PGs degraded"
full0=$(peerings full)
log0=$(peerings log)
osd_start 1
wait_for "s['pgs'].get('active+clean')==16" 60 "active+clean with osd.1 back"
sleep 3 # a metrics refresh
full1=$(peerings full)
log1=$(peerings log)
[ "$full1" = "$full0" ] || fail "osd.1 back from a clean stop: $((full1 - full0)) PGs compared whole"
[ "$log1" -gt "$log0" ] || fail "no peering by log ($log0 -> $log1)"
check_all "after a clean stop"
echo "clean stop: osd.1 back, $((log1 - log0)) peerings by log, none full; 20 changed and 5 deleted objects right"

# A crash loses the logs: the PGs of osd.1 are compared whole.
osd_kill 1
wait_for "s['osd']['up']==2" 20 "osd.1 marked down"
full0=$(peerings full)
osd_start 1
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==16" 60 "active+clean after the crash"
sleep 3
full1=$(peerings full)
[ "$full1" -gt "$full0" ] || fail "osd.1 back from a crash, yet no PG compared whole"
check_all "after a crash"
echo "crash: osd.1 back, $((full1 - full0)) PGs compared whole"

for i in 0 1 2; do osd_kill "$i"; done
count=""
for i in 0 1 2; do
	"$build/basalt-osd" --fsck --device "$dir/osd.$i.img" >"$dir/fsck.$i" 2>&1 ||
		fail "fsck osd.$i: $(cat "$dir/fsck.$i")"
	n=$("$build/basalt-osd" --dump --json --device "$dir/osd.$i.img" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])')
	[ -z "$count" ] || [ "$n" = "$count" ] || fail "osd.$i holds $n objects, osd.0 $count"
	count=$n
done
echo "fsck clean on all 3 OSDs, each holding the same $count objects"
echo PASS
