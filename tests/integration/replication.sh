#!/usr/bin/env bash
# Replication with real daemons: 3 monitors and 3 OSDs on three pretend
# hosts, a pool of size 3 and min_size 2.
#  - every object is acknowledged with 3 copies and reads back exactly;
#  - one OSD killed: writes go on (PGs active+undersized+degraded);
#  - a second one killed: below min_size, I/O waits and says so; it comes
#    back and writes resume;
#  - the first one back: it receives only the objects that changed while
#    it was away (recovery counters), every PG returns to active+clean,
#    and every object reads back exactly;
#  - incomplete: the OSD that was away comes back alone; it does not serve
#    (it lacks the newest writes) and status names the OSDs it waits for;
#  - all OSDs stopped: each store is clean (fsck) and holds every object.
#   replication.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: replication.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-repl.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
mon_osd_down_out_interval = 0"
osd_conf_local 256M h0 h1 h2
put() { cli --timeout "${3:-15}" object put rbd "$1" "$2" >/dev/null 2>"$dir/put.err" || { cat "$dir/put.err" >&2; return 1; }; }
check_all() {
	for k in $(seq 0 59); do
		cli object get rbd "a:$(printf %x "$k")" "$dir/back" >/dev/null || fail "get $k ($1)"
		cmp -s "$dir/obj.$k" "$dir/back" || fail "object $k differs ($1)"
	done
}
cluster_start
cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 20 "PGs active+clean"

# 60 objects of assorted sizes in 4 KiB units.
for k in $(seq 0 59); do
	head -c $(((k % 32 + 1) * 4096)) /dev/urandom >"$dir/obj.$k"
	put "a:$(printf %x "$k")" "$dir/obj.$k" || fail "put $k"
done
check_all "3 OSDs"
wait_for "s['usage']['objects']==60 and s['pgs'].get('active+clean')==16" 10 "60 objects counted"
echo "60 objects written with 3 copies, read back byte-exact; 16 PGs active+clean"

# One OSD down: writes go on with two copies.
osd_kill 1
wait_for "s['osd']['up']==2" 20 "osd.1 marked down"
for k in $(seq 0 19); do
	head -c 8192 /dev/urandom >"$dir/new.$k"
	put "a:$(printf %x "$k")" "$dir/new.$k" 30 || fail "put $k with osd.1 down"
	# The object is its new first 8 KiB over the old rest.
	{ cat "$dir/new.$k"; tail -c +8193 "$dir/obj.$k"; } >"$dir/tmp" && mv "$dir/tmp" "$dir/obj.$k"
done
wait_for "s['pgs'].get('active+degraded+undersized')==16" 10 "PGs degraded"
check_all "osd.1 down"
echo "osd.1 killed: 20 objects overwritten, all 60 read back; 16 PGs active+degraded+undersized"

# Two down: below min_size 2, nothing is acknowledged with one copy.
osd_kill 2
wait_for "s['osd']['up']==1" 20 "osd.2 marked down"
if put a:0 "$dir/obj.0" 3 2>"$dir/err"; then fail "a write was acknowledged with one copy"; fi
grep -q "did not serve it in time: not active" "$dir/err" || fail "below min_size: $(cat "$dir/err")"
js "s['health']" | grep -q "16 PGs inactive" || fail "health: $(js "s['health']")"
osd_start 2
wait_for "s['osd']['up']==2 and s['pgs'].get('active+degraded+undersized')==16" 30 "osd.2 back"
put a:0 "$dir/obj.0" 30 || fail "put after osd.2 came back"
echo "below min_size: writes refused (PGs inactive), resumed when osd.2 came back"

# osd.1 returns: it gets what changed while it was away, nothing more.
before=$(js "s['recovery']['recovered_objects']")
osd_start 1
wait_for "s['pgs'].get('active+clean')==16" 60 "recovery to active+clean"
moved=$(( $(js "s['recovery']['recovered_objects']") - before ))
[ "$moved" -ge 20 ] && [ "$moved" -le 21 ] || fail "osd.1 received $moved objects, 20 changed"
check_all "after recovery"
echo "osd.1 back: $moved objects recovered (20 changed while it was away); 16 PGs active+clean"

# Incomplete: osd.1 alone comes back after the others, which hold the
# newest writes, went down. It must not serve what it does not have.
osd_kill 1
wait_for "s['osd']['up']==2 and s['pgs'].get('active+degraded+undersized')==16" 30 "osd.1 down"
for k in $(seq 20 29); do
	head -c 4096 /dev/urandom >"$dir/new.$k"
	put "a:$(printf %x "$k")" "$dir/new.$k" 30 || fail "put $k"
	{ cat "$dir/new.$k"; tail -c +4097 "$dir/obj.$k"; } >"$dir/tmp" && mv "$dir/tmp" "$dir/obj.$k"
done
osd_kill 0
osd_kill 2
osd_start 1
wait_for "s['osd']['up']==1 and s['pgs'].get('incomplete', 0)==16" 30 "PGs incomplete"
cli status | grep -q "pg 1.[0-9a-f]* incomplete: waits for one of osd.[02] (down), osd.[02] (down)" ||
	fail "status does not say why: $(cli status)"
if cli --timeout 3 object get rbd a:14 "$dir/back" 2>/dev/null; then
	fail "an incomplete PG served a read"
fi
osd_start 2
wait_for "s['pgs'].get('active+degraded+undersized', 0)==16" 60 "active again with osd.2"
osd_start 0
wait_for "s['pgs'].get('active+clean')==16" 60 "clean again"
check_all "after incomplete"
echo "incomplete: osd.1 alone did not serve (status names the OSDs it waits for); osd.2 back, all data there"

# Every store holds every object, and is clean.
for i in 0 1 2; do osd_kill "$i"; done
for i in 0 1 2; do
	"$build/basalt-osd" --fsck --device "$dir/osd.$i.img" >"$dir/fsck.$i" 2>&1 ||
		fail "fsck osd.$i: $(cat "$dir/fsck.$i")"
	n=$("$build/basalt-osd" --dump --json --device "$dir/osd.$i.img" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])')
	[ "$n" -ge 60 ] || fail "osd.$i holds $n objects"
done
echo "fsck clean on all 3 OSDs, each holding all 60 objects"
echo PASS
