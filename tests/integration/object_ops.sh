#!/usr/bin/env bash
# Object operations through the CLI against real daemons: 3 monitors and
# 3 OSDs on loopback, a pool of size 1 and one of size 3. Objects go to
# their PG's primary and come back byte-exact; ls, stat, overwrite and rm
# behave; bad requests are refused with the reason; in the size-1 pool
# the objects of a killed OSD are unavailable (and say why) while the
# others are served, and all are back, intact, when it restarts.
# (Replication itself: replication.sh.)
#   object_ops.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: object_ops.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-objects.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 2s"
osd_conf_local 128M h0 h1 h2
up_count() { cli --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["osd"]["up"])'; }
wait_up() { for _ in $(seq 200); do [ "$(up_count)" = "$1" ] && return 0; sleep 0.1; done; fail "not $1 OSDs up"; }
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2; do osd_start "$i"; done
wait_up 3
cli pool create one --size 1 --pg-num 16 >/dev/null
cli pool create three --size 3 --pg-num 16 >/dev/null

# 40 objects of assorted sizes, in 4 KiB units so they come back exactly.
for k in $(seq 0 39); do
	head -c $(( (k % 32 + 1) * 4096 )) /dev/urandom >"$dir/obj.$k"
	cli object put one "a:$(printf %x "$k")" "$dir/obj.$k" >/dev/null || fail "put $k"
done
for k in $(seq 0 39); do
	cli object get one "a:$(printf %x "$k")" "$dir/back.$k" || fail "get $k"
	cmp -s "$dir/obj.$k" "$dir/back.$k" || fail "object $k came back different"
done
cli --json object ls one >"$dir/ls"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert len(o)==40 and all(x["version"]>0 for x in o), o' \
	"$dir/ls" || fail "ls: $(cat "$dir/ls")"
echo "40 objects put, read back byte-exact and listed"
# The OSDs' beacons carry PG states and usage: all 32 PGs served.
pgs_ok() {
	cli --json status | python3 -c "import json,sys
s=json.load(sys.stdin); p=s['pgs']; u=s['usage']
sys.exit(0 if p.get('active+clean')==32 and u['objects']==$1 else 1)"
}
for _ in $(seq 50); do pgs_ok 40 && break; sleep 0.2; done
pgs_ok 40 || fail "status: $(cli --json status)"
[ "$(cli --json pg ls one | python3 -c 'import json,sys; print(sum(p["objects"] for p in json.load(sys.stdin)))')" = 40 ] ||
	fail "pg ls: $(cli --json pg ls one)"
cli status | grep -q "health: *OK" || fail "health: $(cli status)"
echo "status: 32 PGs active+clean, 40 objects counted"

v1=$(cli --json object stat one a:0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
cli object put one a:0 "$dir/obj.5" >/dev/null
cli --json object stat one a:0 | python3 -c "import json,sys; s=json.load(sys.stdin)
assert s['version'] > $v1 and s['size'] == 24576, s" || fail "overwrite: $(cli --json object stat one a:0)"
cli object rm one a:1 >/dev/null || fail "rm"
if cli object get one a:1 >/dev/null 2>"$dir/err"; then fail "a removed object was read"; fi
grep -q "no such object" "$dir/err" || fail "rm: $(cat "$dir/err")"
# Create-only (a clone's copy-up): refused over an object that exists,
# which keeps its bytes; a new one is made.
if cli object put one a:0 "$dir/obj.7" --create >/dev/null 2>"$dir/err"; then fail "a create over a:0"; fi
grep -q "the object exists already" "$dir/err" || fail "put --create: $(cat "$dir/err")"
cli object get one a:0 "$dir/back.0" && cmp -s "$dir/obj.5" "$dir/back.0" || fail "put --create changed a:0"
cli object put one a:1 "$dir/obj.7" --create >/dev/null || fail "put --create of a removed object"
cli object get one a:1 "$dir/back.1" && cmp -s "$dir/obj.7" "$dir/back.1" || fail "put --create wrote something else"
cli object rm one a:1 >/dev/null
cli object put three a:0 "$dir/obj.7" >/dev/null || fail "put into the size-3 pool"
cli object get three a:0 "$dir/back.three" && cmp -s "$dir/obj.7" "$dir/back.three" ||
	fail "the size-3 pool gave back something else"
if cli object put one a:0 /dev/null >/dev/null 2>"$dir/err"; then fail "an empty put"; fi
head -c 200704 /dev/urandom >"$dir/big"
if cli object put one a:0 "$dir/big" >/dev/null 2>"$dir/err"; then fail "an object beyond the block"; fi
grep -q "outside the pool's 131072-byte objects" "$dir/err" || fail "$(cat "$dir/err")"
# An object keeps 4 KiB chunks, not a byte length: 50,001 bytes would come
# back as 53,248, so the put is refused and the object left as it was.
head -c 50001 /dev/urandom >"$dir/odd"
cli object get one a:2 "$dir/before.2" || fail "get a:2"
if cli object put one a:2 "$dir/odd" >/dev/null 2>"$dir/err"; then fail "a 50,001-byte put"; fi
grep -q "is 50001 bytes: an object holds whole 4 KiB chunks and keeps no byte length, so it would come back as 53248 bytes; pad it" "$dir/err" ||
	fail "50,001-byte put: $(cat "$dir/err")"
cli object get one a:2 "$dir/after.2" && cmp -s "$dir/before.2" "$dir/after.2" ||
	fail "a refused put changed the object"
echo "overwrite bumps the version; rm works; a size-3 pool round-trips; empty, oversized and not-4-KiB objects are refused with the reason"

# Kill osd.1: its objects are unavailable, the others served.
{ kill -9 "${pid[osd.1]}"; wait "${pid[osd.1]}"; } 2>/dev/null || true
wait_up 2
served=0 unavailable=0
for k in $(seq 2 21); do
	if cli --timeout 2 object get one "a:$(printf %x "$k")" "$dir/back.$k" 2>"$dir/err"; then
		cmp -s "$dir/obj.$k" "$dir/back.$k" || fail "object $k different while osd.1 is down"
		served=$((served + 1))
	else
		grep -q "no OSD of pg .* is up" "$dir/err" || fail "object $k: $(cat "$dir/err")"
		unavailable=$((unavailable + 1))
	fi
done
[ "$served" -gt 0 ] && [ "$unavailable" -gt 0 ] || fail "served $served, unavailable $unavailable"
cli status | grep -Eq "ERR: [0-9]+ PGs? down" || fail "no PGs down in status: $(cli status)"
echo "osd.1 killed: $served objects served, $unavailable unavailable (their only copy is on osd.1)"
osd_start 1
wait_up 3
for k in $(seq 2 39); do
	cli object get one "a:$(printf %x "$k")" "$dir/back.$k" || fail "get $k after restart"
	cmp -s "$dir/obj.$k" "$dir/back.$k" || fail "object $k different after the restart"
done
echo "osd.1 restarted: all 38 objects back, byte-exact"
echo PASS
