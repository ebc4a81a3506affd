#!/usr/bin/env bash
# basalt-fuse on a local cluster (3 monitors, 3 OSDs): looks, du, mount
# points.
#  - while mount A holds volume vm's lock (a file open for writing), mount
#    B stats, reads and du's it without a lock: the map's epoch does not
#    move, and B's open for writing is refused (EBUSY);
#  - du of a 256 MiB thin volume with 1 MiB written shows about 1 MiB
#    (st_blocks from the objects that exist), and follows more writes
#    within the listing's age (10 s) while st_size stays the volume's,
#    also with an OSD down (its PGs listed by the OSDs that took them);
#  - refused mount points, each naming the path and why: a regular file,
#    a missing path, A's own mount point, a directory inside A's mount.
#   fuse_look.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: fuse_look.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-fuselook.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mA=$dir/a mB=$dir/b
mkdir -p "$mA" "$mB"
cleanup() {
	exec 5<&- 2>/dev/null || true
	for m in "$mA" "$mB" "$dir/file"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v fusermount3 >/dev/null || fail "fusermount3 is missing (scripts/install-deps.sh installs it)"

cluster_up_local 1G "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 256M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

du_kib() { du -k "$1" | cut -f1; }

# --- A writes and holds the lock; B looks ---
fuse_start fuseA "$mA"
head -c 1M /dev/urandom >"$dir/one"
dd if="$dir/one" of="$mA/volumes/vm" bs=1M conv=notrunc status=none || fail "A's write"
exec 5<>"$mA/volumes/vm"
for _ in $(seq 50); do
	cli --json volume info vm | grep -q "pid ${pid[fuseA]}" && break
	sleep 0.1
done
cli --json volume info vm | grep -q "pid ${pid[fuseA]}" || fail "A does not hold the lock"
epoch0=$(js "s['epoch']")
fuse_start fuseB "$mB"
[ "$(stat -c %s "$mB/volumes/vm")" = $((256 << 20)) ] || fail "B's size: $(stat -c %s "$mB/volumes/vm")"
cmp -n $((1 << 20)) "$dir/one" "$mB/volumes/vm" || fail "B reads other data than A wrote"
kib=$(du_kib "$mB/volumes/vm")
[ "$kib" -ge 1024 ] && [ "$kib" -le 2048 ] || fail "du of a volume with 1 MiB written: $kib KiB"
(exec 6<>"$mB/volumes/vm") 2>"$dir/err" && fail "B opened for writing a volume A holds"
grep -q "Device or resource busy" "$dir/err" || fail "B's open: $(cat "$dir/err")"
grep -q "locked by client.admin on .* pid ${pid[fuseA]}" "$dir/fuseB.log" ||
	fail "B's log does not name the holder: $(tail -3 "$dir/fuseB.log")"
epoch1=$(js "s['epoch']")
# B's refused open asked once (refusals change nothing in the map).
[ "$epoch1" = "$epoch0" ] || fail "B's looks moved the map from epoch $epoch0 to $epoch1"
echo "look: B stats, reads and du's the volume A holds, the epoch stays $epoch0; B's write open is EBUSY naming A"

# --- du follows writes within the listing's age ---
head -c 8M /dev/urandom | dd of="$mA/volumes/vm" bs=1M seek=64 conv=notrunc status=none ||
	fail "A's second write"
ok=0
for _ in $(seq 30); do
	kib=$(du_kib "$mB/volumes/vm")
	[ "$kib" -ge $((9 * 1024)) ] && { ok=1; break; }
	sleep 1
done
[ "$ok" = 1 ] || fail "du did not follow 8 MiB more within 30 s: $kib KiB"
[ "$kib" -le $((10 * 1024)) ] || fail "du after 9 MiB written: $kib KiB"
[ "$(du_kib "$mA/volumes/vm")" -le $((10 * 1024)) ] || fail "A's du: $(du_kib "$mA/volumes/vm") KiB"
echo "du: about 1 MiB with 1 MiB written, $kib KiB once 9 MiB are; the file stays 256 MiB"

osd_kill 2
wait_for "s['osd']['up']==2" 30 "osd.2 marked down"
head -c 4M /dev/urandom | dd of="$mA/volumes/vm" bs=1M seek=128 conv=notrunc status=none ||
	fail "A's write with osd.2 down"
ok=0
for _ in $(seq 30); do
	kib=$(du_kib "$mB/volumes/vm")
	[ "$kib" -ge $((13 * 1024)) ] && { ok=1; break; }
	sleep 1
done
[ "$ok" = 1 ] && [ "$kib" -le $((14 * 1024)) ] || fail "du with osd.2 down: $kib KiB, not 13 MiB"
echo "du with osd.2 down: $kib KiB for 13 MiB written"

# --- mount points that are refused ---
refused() { # refused PATH PATTERN
	local rc=0
	"$build/basalt-fuse" "$1" -f -c "$dir/basalt.conf" 2>"$dir/err" 5<&- || rc=$?
	[ "$rc" != 0 ] || fail "basalt-fuse mounted on $1"
	grep -q "cannot use the mount point $1: $2" "$dir/err" || fail "mount on $1: $(cat "$dir/err")"
}
touch "$dir/file"
refused "$dir/file" "Not a directory"
refused "$dir/nope" "No such file or directory"
refused "$mA" "it is on the basalt-fuse mount $mA"
refused "$mA/volumes" "it is on the basalt-fuse mount $mA"
echo "mount points: a file, a missing path, a basalt-fuse mount and a directory in one are refused, saying why"

exec 5<&-
for p in fuseA fuseB; do
	kill -TERM "${pid[$p]}"
	wait "${pid[$p]}" || fail "$p exited non-zero on SIGTERM"
done
echo "PASS fuse_look"
