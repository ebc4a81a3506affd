#!/usr/bin/env bash
# Rollback, protection, clones and flatten on a local cluster (3 monitors,
# 3 OSDs), through basalt-nbd:
#  - ext4 on a volume (nbdfuse + mount -o loop): snapshot, change files
#    and grow it, snap rollback: the old files and size, fsck clean;
#    refused while a writer holds the volume, naming it;
#  - a clone of a protected snapshot in the same pool and one in another
#    pool: all three mounted at once and changed independently;
#  - copy-up at queue depth 32 (qemu-io, then fio verifying): 4 KiB
#    writes racing into the same objects a parent holds all land, the
#    rest of each object reads the parent's; a discarded object reads
#    zeros, not the parent; a snapshot of the clone reads through, and a
#    rollback to it shows the parent again;
#  - flatten: the clone keeps its files with its parent snapshot gone;
#  - every refusal one line, the map unchanged.
#   snapshot_clones.sh BUILD_DIR   (needs root: mount -o loop)
set -euo pipefail
build=$(cd "${1:?usage: snapshot_clones.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-clones.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mnt=$dir/mnt
cleanup() {
	for m in "$mnt".*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
	for f in "$dir"/fuse.*; do
		mountpoint -q "$f" 2>/dev/null && { fusermount3 -u "$f" 2>/dev/null || umount -l "$f"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in nbdfuse qemu-io fio mkfs.ext4 fsck.ext4 fusermount3; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 512M
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli pool create fast --size 2 --pg-num 8 >/dev/null
cli pool create big --size 2 --pg-num 8 --block-size 1M >/dev/null
cli volume create vm --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==32" 30 "PGs active+clean"
nbd_start

# attach VOL: VOL's export as the file $dir/fuse.VOL/disk (nbdfuse).
attach() {
	mkdir -p "$dir/fuse.$1"
	nbdfuse "$dir/fuse.$1/disk" "$uri/$1" &
	for _ in $(seq 50); do [ -e "$dir/fuse.$1/disk" ] && return 0; sleep 0.1; done
	fail "nbdfuse of $1 did not come up"
}
detach() {
	fusermount3 -u "$dir/fuse.$1" 2>/dev/null || umount "$dir/fuse.$1"
	# basalt-nbd gives the lock back when the connection closes.
	for _ in $(seq 50); do
		[ "$(vjson "$1" 'v["lock"]')" = None ] && return 0
		sleep 0.1
	done
	fail "$1 is still locked after its client went: $(cli volume info "$1")"
}
mnt() { mkdir -p "$mnt.$1" && mount -o loop "$dir/fuse.$1/disk" "$mnt.$1" || fail "mount $1"; }
umnt() { umount "$mnt.$1"; }
sums() { (cd "$mnt.$1" && find . -type f ! -path './lost+found/*' -exec sha256sum {} + | sort -k2); }
fsck_clean() { fsck.ext4 -fn "$dir/fuse.$1/disk" >"$dir/fsck" 2>&1 || fail "fsck of $1: $(tail -5 "$dir/fsck")"; }
vjson() { cli --json volume info "$1" | python3 -c "import json,sys; v=json.load(sys.stdin); print($2)"; }
epoch() { cli --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])'; }
refused() { # refused "MESSAGE" ARGS...: fails with MESSAGE, one line
	local want=$1
	shift
	if cli "$@" >"$dir/out" 2>"$dir/err"; then fail "basalt $* succeeded"; fi
	grep -qF "$want" "$dir/err" || fail "basalt $* said: $(cat "$dir/err"), not: $want"
	[ "$(wc -l <"$dir/err")" = 1 ] || fail "basalt $* said more than one line: $(cat "$dir/err")"
}
qio() { qemu-io -f raw "$@" >"$dir/qio.out" 2>&1 || fail "qemu-io $*: $(cat "$dir/qio.out")"; }
src=$(cd "$(dirname "$0")/../.." && pwd)

# --- rollback -------------------------------------------------------------------------
attach vm
mkfs.ext4 -q -F "$dir/fuse.vm/disk" || fail "mkfs.ext4"
mnt vm
cp -r "$src/osd" "$src/common" "$mnt.vm/"
sums vm >"$dir/s1.sums"
umnt vm
detach vm
cli snap create vm@s1 >/dev/null
attach vm
mnt vm
rm -rf "$mnt.vm/osd"
cp -r "$src/client" "$mnt.vm/"
echo changed >"$mnt.vm/common/map.c"
umnt vm
# The writer still holds the volume: refused, naming it.
e=$(epoch)
refused "volume 'vm' is in use: locked by client.admin" snap rollback vm@s1
[ "$(epoch)" = "$e" ] || fail "the refused rollback changed the map"
detach vm
cli volume resize vm 80M >/dev/null
cli snap rollback vm@s1 >"$dir/out" || fail "snap rollback: $(cat "$dir/out")"
grep -q "size 64 MiB: done" "$dir/out" || fail "rollback said: $(cat "$dir/out")"
[ "$(vjson vm 'v["size"]')" = $((64 << 20)) ] || fail "rollback left the size at $(vjson vm 'v["size"]')"
[ "$(vjson vm 'v["lock"]')" = None ] || fail "rollback kept the lock it held: $(cli volume info vm)"
attach vm
fsck_clean vm
mnt vm
sums vm | cmp -s - "$dir/s1.sums" || fail "after rollback the files are not those of s1"
umnt vm
detach vm
echo "rollback: $(wc -l <"$dir/s1.sums") files back as at s1, size 64 MiB again, fsck clean; refused while locked"

# --- protection and clones ---------------------------------------------------------------
e=$(epoch)
refused "snapshot 's1' of 'vm' is not protected: protect it first" volume clone vm@s1 c1
[ "$(epoch)" = "$e" ] || fail "a refused clone changed the map"
cli snap protect vm@s1 >/dev/null
e=$(epoch)
refused "pool 'big' has 1048576-byte objects" volume clone vm@s1 c2 --pool big
refused "snapshot 's1' of 'vm' is already protected" snap protect vm@s1
refused "snapshot 's1' of 'vm' is protected: unprotect it first" snap rm vm@s1
[ "$(epoch)" = "$e" ] || fail "refusals changed the map: epoch $e -> $(epoch)"
[ "$(cli --json snap ls vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["protected"])')" = True ] ||
	fail "snap ls does not say s1 is protected: $(cli snap ls vm)"
cli volume clone vm@s1 c1 >/dev/null
cli volume clone vm s1 c2 --pool fast >/dev/null
[ "$(vjson c2 'v["pool"], v["parent"]["volume"], v["parent"]["snapshot"]')" = "fast vm s1" ] ||
	fail "c2: $(cli --json volume info c2)"
e=$(epoch)
refused "snapshot 's1' of 'vm' is the parent of clone 'c" snap unprotect vm@s1
[ "$(epoch)" = "$e" ] || fail "a refused unprotect changed the map"
# All three at once, each changed its own way.
for v in vm c1 c2; do attach $v; mnt $v; done
for v in vm c1 c2; do sums $v | cmp -s - "$dir/s1.sums" || fail "$v does not start as s1"; done
echo "vm's own" >"$mnt.vm/who"
rm -rf "$mnt.c1/common"
cp -r "$src/client" "$mnt.c1/"
echo "c1's own" >"$mnt.c1/who"
dd if=/dev/urandom of="$mnt.c2/blob" bs=1M count=8 status=none
echo "c2's own" >"$mnt.c2/who"
for v in vm c1 c2; do sums $v >"$dir/$v.sums"; umnt $v; fsck_clean $v; done
for v in vm c1 c2; do
	mnt $v
	sums $v | cmp -s - "$dir/$v.sums" || fail "$v changed across a remount"
	[ "$(cat "$mnt.$v/who")" = "$v's own" ] || fail "$v reads another's file"
	umnt $v
	detach $v
done
echo "clones: c1 (rbd) and c2 (fast) of vm@s1 and vm itself changed independently, fsck clean"

# --- copy-up at queue depth 32 -----------------------------------------------------------
cli volume create pat --size 4M >/dev/null
qio -c "write -P 0x11 0 4M" "$uri/pat"
cli snap create pat@p >/dev/null
cli snap protect pat@p >/dev/null
cli volume clone pat@p pc >/dev/null
cli snap create pc@before >/dev/null
# 32 writes of 4 KiB in flight at once, 4 into each of 8 objects the
# clone does not have yet; then a 512-byte write (read-modify-write), a
# discard of part of an object and of a whole one.
args=()
for o in $(seq 0 7); do
	for k in 0 1 2 3; do args+=(-c "aio_write -P $((0x40 + o * 4 + k)) $((o * 131072 + k * 20480)) 4k"); done
done
qio "${args[@]}" -c "aio_flush" "$uri/pc"
qio -c "write -P 0x99 $((9 * 131072 + 1024)) 512" -c "discard $((10 * 131072 + 8192)) 8k" \
	-c "discard $((11 * 131072)) 128k" "$uri/pc"
args=()
for o in $(seq 0 7); do
	for k in 0 1 2 3; do
		at=$((o * 131072 + k * 20480))
		args+=(-c "read -P $((0x40 + o * 4 + k)) $at 4k" -c "read -P 0x11 $((at + 4096)) 16k")
	done
	args+=(-c "read -P 0x11 $((o * 131072 + 81920)) 48k")
done
qio -r "${args[@]}" -c "read -P 0x11 $((9 * 131072)) 1024" -c "read -P 0x99 $((9 * 131072 + 1024)) 512" \
	-c "read -P 0x11 $((9 * 131072 + 1536)) 129536" -c "read -P 0x11 $((10 * 131072)) 8k" \
	-c "read -P 0 $((10 * 131072 + 8192)) 8k" -c "read -P 0x11 $((10 * 131072 + 16384)) 112k" \
	-c "read -P 0 $((11 * 131072)) 128k" -c "read -P 0x11 $((12 * 131072)) $((4194304 - 12 * 131072))" \
	"$uri/pc"
grep -qi "fail\|mismatch\|error" "$dir/qio.out" && fail "pc reads: $(grep -i 'fail\|mismatch\|error' "$dir/qio.out" | head -3)"
qio -r -c "read -P 0x11 0 4M" "$uri/pat@p"
# A snapshot of the clone taken before reads through to the parent too,
# and rolling back to it gives the clone its parent's bytes again.
qio -r -c "read -P 0x11 0 4M" "$uri/pc@before"
cli snap rollback pc@before >/dev/null
qio -r -c "read -P 0x11 0 4M" "$uri/pc"
# fio at queue depth 32: every 4 KiB of a fresh clone written once, in
# random order (1,024 writes racing to copy in 32 objects), verified.
cli volume clone pat@p fc >/dev/null
fio --name=copyup --ioengine=nbd --uri="$uri/fc" --rw=randwrite --bs=4k --iodepth=32 \
	--size=4m --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output-format=json \
	--output="$dir/fio.json" >"$dir/fio.err" 2>&1 || fail "fio: $(tail -5 "$dir/fio.err")"
fio_verified "$dir/fio.json" >/dev/null || fail "fio reported an error: $(cat "$dir/fio.json")"
echo "copy-up: 32 racing 4 KiB writes into 8 parent objects all kept, the parent's bytes around them; discards read zeros"

# --- flatten -----------------------------------------------------------------------------
cli snap create c1@x >/dev/null
refused "volume 'c1' has 1 snapshots, which read through to its parent: remove them first" volume flatten c1
cli snap rm c1@x >/dev/null
refused "volume 'vm' is not a clone (no parent)" volume flatten vm
cli --json volume flatten c1 >"$dir/out" || fail "flatten c1: $(cat "$dir/out")"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['objects_copied'] > 0, d" \
	"$dir/out" || fail "flatten said: $(cat "$dir/out")"
[ "$(vjson c1 'v["parent"]')" = None ] || fail "c1 still has a parent after flatten"
refused "snapshot 's1' of 'vm' is the parent of clone 'c2'" snap unprotect vm@s1
cli volume flatten c2 >/dev/null
cli snap unprotect vm@s1 >/dev/null
cli snap rm vm@s1 >/dev/null
# The parent moves on; the flat clones keep their own.
qio -c "write -P 0xee 0 64M" "$uri/vm"
for v in c1 c2; do
	attach $v
	fsck_clean $v
	mnt $v
	sums $v | cmp -s - "$dir/$v.sums" || fail "$v changed by flatten"
	umnt $v
	detach $v
done
echo "flatten: c1 and c2 keep their files with vm@s1 removed and vm overwritten"

# --- refusals: one line each, nothing changed -------------------------------------------
e=$(epoch)
refused "volume 'vm' has no snapshot 'nope'" snap rollback vm@nope
refused "volume 'nope' does not exist" snap rollback nope@s1
refused "is not VOLUME@SNAPSHOT" snap rollback vm
refused "volume 'pat' has no snapshot 'nope'" snap protect pat@nope
refused "snapshot 'p' of 'pat' is the parent of clone 'pc'" snap unprotect pat@p
refused "volume 'c1' already exists" volume clone pat@p c1
refused "pool 'nope' does not exist" volume clone pat@p c9 --pool nope
refused "volume 'nope' does not exist" volume flatten nope
if cli --json snap rollback vm@nope >/dev/null 2>"$dir/err"; then fail "--json rollback of nothing"; fi
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['errno'] == 'ENOENT', d" \
	"$dir/err" || fail "--json refusal: $(cat "$dir/err")"
[ "$(epoch)" = "$e" ] || fail "refusals changed the map: epoch $e -> $(epoch)"
echo "snapshot_clones: ok"
