#!/usr/bin/env bash
# Full disks: 3 monitors and 3 OSDs with small stores, a pool of size 3.
# Objects are written until the OSDs run out of space: the write that
# does not fit fails with a clear "no space left on an OSD of pg ..." (or
# "pool 'rbd' is full: osd.N is full" once the map says so), and every
# write acknowledged before it reads back exactly. Deleting objects frees
# their space at once: writes succeed again, and the PGs return to clean.
#   full_disk.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: full_disk.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-full.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

cluster_up_local 48M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 8 >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

acked=0
for k in $(seq 0 999); do
	head -c 131072 /dev/urandom >"$dir/obj.$k"
	if ! cli --timeout 20 object put rbd "a:$(printf %x "$k")" "$dir/obj.$k" >/dev/null 2>"$dir/err"; then
		rm "$dir/obj.$k"
		break
	fi
	acked=$((acked + 1))
done
[ "$acked" -gt 10 ] && [ "$acked" -lt 1000 ] || fail "$acked objects fit"
grep -Eq "no space left on an OSD of pg 1\.[0-7]: delete data or add OSDs|pool 'rbd' is full: osd\.[0-2] is full" "$dir/err" ||
	fail "the full write said: $(cat "$dir/err")"
echo "full after $acked objects of 128 KiB: the next write failed with '$(cat "$dir/err")'"
check() {
	for k in $(seq 0 $((acked - 1))); do
		[ -f "$dir/obj.$k" ] || continue
		cli object get rbd "a:$(printf %x "$k")" "$dir/back" >/dev/null || fail "get $k ($1)"
		cmp -s "$dir/obj.$k" "$dir/back" || fail "object $k differs ($1)"
	done
}
check "full"
echo "every acknowledged object reads back exactly"

used_full=$(js "s['usage']['used_bytes']")
for k in $(seq 0 2 $((acked - 1))); do
	cli object rm rbd "a:$(printf %x "$k")" >/dev/null || fail "rm $k"
	rm "$dir/obj.$k"
done
wait_for "s['usage']['used_bytes'] < $used_full" 10 "space back after the deletes"
# Writes resume once the monitors see the OSDs below the full ratio.
wait_for "not any(p['full'] for p in s['pool_usage'])" 20 "the pool no longer full"
for k in $(seq 1000 1009); do
	head -c 131072 /dev/urandom >"$dir/obj.$k"
	cli --timeout 30 object put rbd "a:$(printf %x "$k")" "$dir/obj.$k" >/dev/null ||
		fail "a write after freeing space"
done
wait_for "s['pgs'].get('active+clean')==8" 60 "PGs clean again"
check "after deletes"
for k in $(seq 1000 1009); do
	cli object get rbd "a:$(printf %x "$k")" "$dir/back" >/dev/null && cmp -s "$dir/obj.$k" "$dir/back" ||
		fail "object $k after freeing space"
done
echo "half deleted: space came back ($(( used_full / 1048576 )) MiB used before), writes succeed again, PGs clean"
echo PASS
