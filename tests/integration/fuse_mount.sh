#!/usr/bin/env bash
# basalt-fuse on a local cluster (3 monitors, 3 OSDs, a pool of size 3):
#  - MOUNT/volumes lists every volume with its size; creating, removing,
#    renaming or truncating a volume file is refused with EPERM;
#  - dd/cmp of random data in and out;
#  - punching a hole frees the cluster's space at once (basalt status);
#  - mkfs.ext4 on the volume file, mount -o loop, a tree of files,
#    fstrim of a deleted file frees its objects, fsck.ext4 -fn clean;
#    then the same volume served by basalt-nbd
#    (nbdfuse + mount -o loop) shows the same files;
#  - file_exerciser: 40,000 random reads, writes, punches, zero ranges,
#    truncates and seeks against a model, no difference, on a volume of
#    an erasure-coded 2+1 pool;
#  - a second mount cannot open a volume for writing while the first holds
#    it (EBUSY, the holder in its log), but can read it;
#  - -o ro refuses writes; --volume shows one volume;
#  - SIGTERM unmounts: at once when idle, lazily while a file is open (the
#    open file still works; the process exits once it is closed).
#   fuse_mount.sh BUILD_DIR [OPS]
set -euo pipefail
build=$(cd "${1:?usage: fuse_mount.sh BUILD_DIR [OPS]}" && pwd)
ops=${2:-40000} # a new seed each run: longer runs by hand
dir=$(mktemp -d /tmp/basalt-fuse.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mA=$dir/a mB=$dir/b mRO=$dir/ro mV=$dir/one ext=$dir/ext nbdmnt=$dir/nbdfuse
mkdir -p "$mA" "$mB" "$mRO" "$mV" "$ext" "$nbdmnt"
cleanup() {
	exec 5<&- 2>/dev/null || true
	mountpoint -q "$ext" && umount "$ext"
	for m in "$nbdmnt" "$mA" "$mB" "$mRO" "$mV"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in fusermount3 nbdfuse mkfs.ext4 fsck.ext4 fallocate python3; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create disk --size 256M >/dev/null
cli volume create odd --size 1000K >/dev/null
# The exerciser's volume is erasure-coded (2+1, 256 KiB objects).
cli pool create ec --ec 2+1 --pg-num 8 >/dev/null
cli volume create fx --size 32M --pool ec >/dev/null
wait_for "s['pgs'].get('active+clean')==24" 30 "PGs active+clean"

used() { js "s['usage']['used_bytes']"; }
fuse_start fuseA "$mA"
vol=$mA/volumes

# --- the listing, and what the mount refuses ---
[ "$(ls "$vol" | tr '\n' ' ')" = "disk fx odd " ] || fail "volumes/ lists: $(ls "$vol")"
[ "$(stat -c %s "$vol/disk")" = $((256 << 20)) ] || fail "disk size $(stat -c %s "$vol/disk")"
[ "$(stat -c %s "$vol/odd")" = $((1000 << 10)) ] || fail "odd size $(stat -c %s "$vol/odd")"
expect_eperm() { # expect_eperm WHAT CMD...
	local what=$1
	shift
	"$@" 2>"$dir/err" && fail "$what was allowed"
	grep -q "Operation not permitted" "$dir/err" || fail "$what: $(cat "$dir/err")"
}
expect_eperm "creating a file" touch "$vol/new"
expect_eperm "removing a volume file" rm -f "$vol/odd"
expect_eperm "renaming a volume file" mv "$vol/odd" "$vol/odd2"
expect_eperm "mkdir" mkdir "$vol/d"
expect_eperm "truncate" truncate -s 1M "$vol/odd"
expect_eperm "an O_TRUNC open" dd if=/dev/zero of="$vol/odd" bs=4k count=1
[ "$(stat -c %s "$vol/odd")" = $((1000 << 10)) ] || fail "odd changed size"
echo "listing: 3 volumes with their sizes; create, rm, mv, mkdir, truncate, O_TRUNC refused (EPERM)"

# --- data in and out; a hole punched frees space ---
base=$(used)
head -c $((64 << 20)) /dev/urandom >"$dir/img"
dd if="$dir/img" of="$vol/disk" bs=1M conv=notrunc,fsync status=none || fail "dd in"
cmp -n $((64 << 20)) "$dir/img" "$vol/disk" || fail "the data came back different"
head -c 1000 /dev/urandom >"$dir/small"
dd if="$dir/small" of="$vol/odd" bs=1000 seek=7 conv=notrunc status=none || fail "unaligned dd"
python3 - "$vol/odd" "$dir/small" <<'EOF' || fail "an unaligned write came back different"
import sys
d = open(sys.argv[1], 'rb').read()
assert len(d) == 1000 << 10
assert d[7000:8000] == open(sys.argv[2], 'rb').read() and d[:7000] == bytes(7000), "mismatch"
EOF
vol_used() { cli --json volume info "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["used_bytes"])'; }
[ "$(vol_used disk)" -ge $((64 << 20)) ] || fail "volume info: $(cli volume info disk)"
wait_for "s['usage']['used_bytes'] > $base + 3 * (60 << 20)" 10 "usage counted the 64 MiB"
full=$(used)
fallocate -p -o 0 -l $((64 << 20)) "$vol/disk" || fail "punch hole"
# At once: the objects are gone from the OSDs when fallocate returns.
[ "$(vol_used disk)" = 0 ] || fail "after the punch, volume info: $(cli volume info disk)"
wait_for "s['usage']['used_bytes'] < $full - 3 * (60 << 20)" 10 "space back after the punch"
after=$(used)
cmp -n $((64 << 20)) /dev/zero "$vol/disk" || fail "the punched range does not read as zeros"
python3 - "$vol/disk" <<'EOF' || fail "SEEK_DATA/SEEK_HOLE"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b'x' * 4096, 100 << 20)
assert os.lseek(fd, 0, os.SEEK_DATA) == 100 << 20
assert os.lseek(fd, 100 << 20, os.SEEK_HOLE) > 100 << 20
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
EOF
echo "data: 64 MiB in and out by dd/cmp, 1000 bytes at offset 7000; punch freed $(((full - after) >> 20)) MiB at once; SEEK_DATA/HOLE"

# --- ext4 on the volume file, then the same volume through basalt-nbd ---
mkfs.ext4 -q -F "$vol/disk" || fail "mkfs.ext4"
mount -o loop "$vol/disk" "$ext" || fail "mount -o loop"
cp -r "$(dirname "$0")/../../osd" "$(dirname "$0")/../../client" "$ext/"
(cd "$ext" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums"
# fstrim inside gives the space of deleted files back (punch on the file).
head -c $((32 << 20)) /dev/urandom >"$ext/big"
sync
before=$(cli --json volume info disk | python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])')
rm "$ext/big"
sync
for _ in 1 2 3 4 5; do
	fstrim "$ext" || fail "fstrim"
	trimmed=$(cli --json volume info disk | python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])')
	[ "$trimmed" -lt $((before - 200)) ] && break
	sleep 1
done
[ "$trimmed" -lt $((before - 200)) ] || fail "fstrim left $trimmed of $before objects"
umount "$ext"
fsck.ext4 -fn "$vol/disk" >"$dir/fsck" 2>&1 || fail "fsck.ext4: $(tail -5 "$dir/fsck")"
for _ in $(seq 50); do [ -z "$(cli --json volume info disk | python3 -c 'import json,sys; print(json.load(sys.stdin)["lock"] or "")')" ] && break; sleep 0.1; done
read -r port < <(free_ports 1)
"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd.log" --listen "127.0.0.1:$port" 5<&- &
pid[nbd]=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/nbd.log" 2>/dev/null && break; sleep 0.1; done
nbdfuse "$nbdmnt/disk" "nbd://127.0.0.1:$port/disk" 5<&- &
for _ in $(seq 50); do [ -e "$nbdmnt/disk" ] && break; sleep 0.1; done
mount -o loop,ro "$nbdmnt/disk" "$ext" || fail "mount through basalt-nbd"
(cd "$ext" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums.nbd"
umount "$ext"
fusermount3 -u "$nbdmnt"
cmp -s "$dir/sums" "$dir/sums.nbd" || fail "basalt-nbd shows other files than basalt-fuse wrote"
kill "${pid[nbd]}"
wait "${pid[nbd]}" || true
echo "ext4: made on the FUSE file, $(wc -l <"$dir/sums") files, fstrim freed $((before - trimmed)) objects, fsck clean; the same files through basalt-nbd"

# --- the exerciser ---
"$build/tests/integration/file_exerciser" "$vol/fx" --ops "$ops" --seed "$RANDOM" --max-len 131072 \
	>"$dir/fx.out" 2>&1 || { cat "$dir/fx.out" >&2; fail "file_exerciser"; }
tail -1 "$dir/fx.out"

# --- locks between two mounts ---
fuse_start fuseB "$mB"
exec 5<>"$vol/odd"
(exec 6<>"$mB/volumes/odd") 2>"$dir/err" && fail "B opened for writing a volume A holds"
grep -q "Device or resource busy" "$dir/err" || fail "B's open: $(cat "$dir/err")"
grep -q "locked by client.admin on .* pid ${pid[fuseA]}" "$dir/fuseB.log" ||
	fail "B's log does not name the holder"
cmp -s "$vol/odd" "$mB/volumes/odd" || fail "B cannot read what A holds"
echo "locks: B refused (EBUSY, its log names A), B reads the volume"

# --- SIGTERM with a file open: lazy unmount, the file still works ---
kill -TERM "${pid[fuseA]}"
for _ in $(seq 50); do mountpoint -q "$mA" || break; sleep 0.1; done
mountpoint -q "$mA" && fail "SIGTERM did not unmount"
kill -0 "${pid[fuseA]}" 2>/dev/null || fail "basalt-fuse exited with a file open"
python3 -c "import os; os.pwrite(5, b'after', 0)" || fail "the open file stopped working"
exec 5<&-
for _ in $(seq 50); do kill -0 "${pid[fuseA]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${pid[fuseA]}" 2>/dev/null && fail "basalt-fuse did not exit once the file was closed"
wait "${pid[fuseA]}" || fail "basalt-fuse exited non-zero"
[ "$(head -c 5 "$mB/volumes/odd")" = after ] || fail "the write after SIGTERM is not there"
(exec 6<>"$mB/volumes/odd") || fail "A's lock was not given back"
echo "SIGTERM: unmounted at once, the open file served until closed, then exit 0 and the lock free"

# --- read-only, one volume, an idle SIGTERM ---
fuse_start fuseRO "$mRO" -o ro
(exec 6<>"$mRO/volumes/odd") 2>"$dir/err" && fail "a read-only mount opened for writing"
grep -q "Read-only file system" "$dir/err" || fail "ro: $(cat "$dir/err")"
cmp -s "$mRO/volumes/odd" "$mB/volumes/odd" || fail "ro mount reads other data"
fuse_start fuseV "$mV" --volume fx
[ "$(ls "$mV/volumes")" = fx ] || fail "--volume fx lists $(ls "$mV/volumes")"
[ -e "$mV/volumes/disk" ] && fail "--volume fx shows disk"
mkdir -p "$dir/none"
"$build/basalt-fuse" "$dir/none" -c "$dir/basalt.conf" --volume nope 2>"$dir/err" && fail "--volume nope mounted"
grep -q "no volume named 'nope'" "$dir/err" || fail "--volume nope: $(cat "$dir/err")"
for p in fuseRO fuseV fuseB; do
	kill -TERM "${pid[$p]}"
	wait "${pid[$p]}" || fail "$p exited non-zero on SIGTERM"
done
for m in "$mRO" "$mV" "$mB"; do mountpoint -q "$m" && fail "$m still mounted"; done
echo "ro: writes refused (EROFS); --volume shows one; SIGTERM unmounts and exits 0"
echo "PASS fuse_mount"
