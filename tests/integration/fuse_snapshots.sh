#!/usr/bin/env bash
# basalt-fuse's snapshots/ on a local cluster (3 monitors, 3 OSDs):
#  - snapshots/VOL@SNAP appears when the snapshot is made (beside
#    volumes/, for every volume's snapshots) and disappears when it is
#    removed;
#  - it reads what the volume held when taken (cmp against the bytes
#    written before, zeros past them) while the live file reads the
#    writes after it; it has the snapshot's size, mode 0400;
#  - writes, truncation and chmod are EROFS, through open and setattr;
#  - du: the snapshot's file counts what reading it returns and the live
#    volume's only its own objects (not the clones kept for the snapshot);
#  - a mount with --volume shows that volume's snapshots only.
#   fuse_snapshots.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: fuse_snapshots.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-fusesnap.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mnt=$dir/mnt one=$dir/one
mkdir -p "$mnt" "$one"
cleanup() {
	for p in "$mnt" "$one"; do
		mountpoint -q "$p" 2>/dev/null && { fusermount3 -u "$p" 2>/dev/null || umount -l "$p"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v fusermount3 >/dev/null || fail "fusermount3 is missing (scripts/install-deps.sh installs it)"

cluster_up_local 512M
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 64M >/dev/null
cli volume create data --size 4M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

fuse_start fuse "$mnt"
snap=$mnt/snapshots/vm@s1
# until CONDITION: up to 5 s (entries are cached 1 s).
until_true() { for _ in $(seq 50); do eval "$1" && return 0; sleep 0.1; done; fail "$2"; }
du_kib() { du -k "$1" | cut -f1; }

[ "$(ls "$mnt" | tr '\n' ' ')" = "snapshots volumes " ] || fail "the root holds: $(ls "$mnt")"
[ -z "$(ls "$mnt/snapshots")" ] || fail "snapshots before any: $(ls "$mnt/snapshots")"

head -c 8M /dev/urandom >"$dir/before"
dd if="$dir/before" of="$mnt/volumes/vm" bs=1M conv=notrunc status=none || fail "the first write"
cli snap create vm@s1 >/dev/null
cli snap create data@d1 >/dev/null
until_true '[ -e "$snap" ]' "vm@s1 did not appear under snapshots/"
until_true '[ "$(ls "$mnt/snapshots" | tr "\n" " ")" = "data@d1 vm@s1 " ]' \
	"snapshots/ lists: $(ls "$mnt/snapshots")"
head -c 4M /dev/urandom >"$dir/after"
dd if="$dir/after" of="$mnt/volumes/vm" bs=1M seek=2 conv=notrunc status=none || fail "the write after s1"

# --- the snapshot reads what was written before it ---------------------------------------
[ "$(stat -c %s "$snap")" = $((64 << 20)) ] || fail "size of vm@s1: $(stat -c %s "$snap")"
[ "$(stat -c %a "$snap")" = 400 ] || fail "mode of vm@s1: $(stat -c %a "$snap")"
cmp -n $((8 << 20)) "$dir/before" "$snap" || fail "vm@s1 does not read what was written before it"
cmp -i $((8 << 20)):0 -n $((56 << 20)) "$snap" /dev/zero || fail "vm@s1 is not zeros past the writes"
cmp -i $((2 << 20)):0 -n $((4 << 20)) "$mnt/volumes/vm" "$dir/after" || fail "the live volume lost the write after s1"
echo "read: vm@s1 is what was written before it; the live file has the write after"

# --- read-only: EROFS --------------------------------------------------------------------
erofs() { # erofs WHAT COMMAND...: the command fails with EROFS
	local what=$1
	shift
	if "$@" 2>"$dir/err"; then fail "$what on a snapshot succeeded"; fi
	grep -q "Read-only file system" "$dir/err" || fail "$what on a snapshot: $(cat "$dir/err")"
}
erofs "a write" dd if=/dev/zero of="$snap" bs=4k count=1 conv=notrunc status=none
erofs "an open for writing" sh -c "exec 6<>'$snap'"
erofs "truncate" truncate -s 1M "$snap"
erofs "chmod" chmod 600 "$snap"
cmp -n $((8 << 20)) "$dir/before" "$snap" || fail "vm@s1 changed after refused writes"
echo "read-only: writes, truncate, chmod of vm@s1 are EROFS"

# --- du: the snapshot references 8 MiB; the live volume holds 8 MiB of its own -------------
ok=0
for _ in $(seq 30); do
	[ "$(du_kib "$snap")" = 8192 ] && [ "$(du_kib "$mnt/volumes/vm")" = 8192 ] && { ok=1; break; }
	sleep 1
done
[ "$ok" = 1 ] || fail "du within 30 s: vm@s1 $(du_kib "$snap") KiB, vm $(du_kib "$mnt/volumes/vm") KiB, not 8192 each"
echo "du: vm@s1 8 MiB, vm 8 MiB (the 4 MiB of clones are the snapshot's)"

# --- --volume: one volume's snapshots ------------------------------------------------------
fuse_start one "$one" --volume data -o ro
[ "$(ls "$one/snapshots")" = "data@d1" ] || fail "--volume data lists: $(ls "$one/snapshots")"
[ ! -e "$one/snapshots/vm@s1" ] || fail "--volume data shows vm@s1"
cmp -n $((4 << 20)) /dev/zero "$one/snapshots/data@d1" || fail "data@d1 through --volume data"
kill -TERM "${pid[one]}"
wait "${pid[one]}" || fail "basalt-fuse --volume data exited non-zero on SIGTERM"
echo "--volume data: only data@d1"

# --- snap rm: gone -----------------------------------------------------------------------
cli snap rm vm@s1 >/dev/null
until_true '[ ! -e "$snap" ]' "vm@s1 is still there after snap rm"
[ "$(ls "$mnt/snapshots")" = "data@d1" ] || fail "snapshots/ after snap rm: $(ls "$mnt/snapshots")"
cmp -n $((4 << 20)) /dev/zero "$mnt/snapshots/data@d1" || fail "data@d1 is not zeros"
echo "snap rm: vm@s1 is gone from snapshots/"

kill -TERM "${pid[fuse]}"
wait "${pid[fuse]}" || fail "basalt-fuse exited non-zero on SIGTERM"
echo "PASS fuse_snapshots"
