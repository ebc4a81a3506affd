#!/usr/bin/env bash
# An erasure-coded pool as a user meets it, on a local cluster (3
# monitors, osd.0-2 on hosts h0-h2): `pool create ec --ec 2+1`, 256 KiB
# objects, a 128 KiB chunk of each on every OSD.
#  1. object put/get; a data chunk damaged on its OSD's device file (as a
#     failing disk would, flip.py): get returns the right bytes from the
#     other two chunks, the bad one is rebuilt (pg ls counts it found and
#     repaired), and a deep scrub of its PG then finds nothing;
#  2. a volume on the pool through basalt-nbd: nbdfuse + mkfs.ext4 + a
#     tree of files; with an OSD killed (min_size 3, K+1) every PG is
#     read-only (status says so, a write waits and times out) and reads
#     decode from the two chunks left: fsck.ext4 -fn is clean and every
#     file reads back the same; the OSD back, every PG clean;
#  3. min_size 2 (K): an OSD killed while files are written, the writes go
#     on; back, recovery rebuilds its chunks; a deep scrub of every PG
#     (parity against data) finds nothing; fsck clean, every file the same;
#  4. snapshots, diffs and clones on the pool: after a snapshot, 1 MiB
#     written: snap diff lists exactly the 256 KiB objects whose bytes
#     changed; a clone of the snapshot (on the EC pool) reads as the
#     snapshot did, takes writes, and the snapshot stays as it was;
#  5. space: status counts 1.5 raw bytes per stored byte, and the OSDs'
#     used space grows by that much for a volume written whole.
#   ec_pool.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: ec_pool.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-ec.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
flip="$(dirname "$0")/flip.py"
mount_dirs
trap mount_cleanup EXIT
for tool in nbdfuse mkfs.ext4 fsck.ext4; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create ec --ec 2+1 --pg-num 8 >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

pgjs() { # pgjs PGID EXPR over p, the PG's pg ls --json entry
	cli --json pg ls ec | python3 -c "import json,sys; p=[x for x in json.load(sys.stdin) if x['pgid']=='$1'][0]; print($2)"
}
pgs_sum() { cli --json pg ls ec | python3 -c "import json,sys; print(sum(p['$1'] for p in json.load(sys.stdin)))"; }
deep_scrub_all() {
	for pg in $(cli --json pg ls ec | python3 -c 'import json,sys; print(*[p["pgid"] for p in json.load(sys.stdin)])'); do
		cli pg deep-scrub "$pg" --wait >>"$dir/scrub.out" 2>&1 ||
			fail "deep scrub of pg $pg: $(tail -3 "$dir/scrub.out")"
	done
}

# --- 1. a damaged data chunk -----------------------------------------------
head -c 262144 /dev/urandom >"$dir/obj"
cli object put ec 300:0 "$dir/obj" >/dev/null || fail "object put"
cli object get ec 300:0 "$dir/back" >/dev/null && cmp -s "$dir/obj" "$dir/back" || fail "object get"
pg=$(cli --json object stat ec 300:0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["pg"])')
sleep 1 # (the store checkpoints the write: the damage lands on its block)
# The object's second 4 KiB unit is the start of data chunk 1: on one OSD.
holders=
for i in 0 1 2; do
	"$flip" "$dir/osd.$i.img" "$dir/obj" --chunk 1 >/dev/null 2>&1 && holders="$holders $i"
done
[ "$(echo $holders | wc -w)" = 1 ] || fail "chunk 1 of 300:0 found on OSDs '$holders', not on one"
cli object get ec 300:0 "$dir/back" >/dev/null 2>"$dir/get.err" || fail "object get with a bad chunk: $(cat "$dir/get.err")"
cmp -s "$dir/obj" "$dir/back" || fail "object get with a bad chunk returned other bytes"
wait_for "s['pgs'].get('active+clean')==8" 30 "pg $pg clean after the repair"
# (The OSDs report their PGs' counts every few seconds.)
for _ in $(seq 50); do
	[ "$(pgjs "$pg" "p['bad_copies_found'], p['bad_copies_repaired']")" = "1 1" ] && break
	sleep 0.2
done
[ "$(pgjs "$pg" "p['bad_copies_found'], p['bad_copies_repaired']")" = "1 1" ] ||
	fail "pg $pg after the read: $(pgjs "$pg" p)"
grep -q "chunk 1 of 1:300:0 on osd.${holders# } is bad: rebuilding it" "$dir"/osd.*.log ||
	fail "no OSD said it rebuilt chunk 1 of 300:0"
cli pg deep-scrub "$pg" --wait >/dev/null || fail "deep scrub of pg $pg"
[ "$(pgjs "$pg" "p['bad_copies_found']")" = 1 ] || fail "the deep scrub after the repair found more: $(pgjs "$pg" p)"
cli object get ec 300:0 "$dir/back" >/dev/null && cmp -s "$dir/obj" "$dir/back" || fail "object get after the repair"
echo "1. data chunk 1 damaged on osd.${holders# }: read right from the others, rebuilt, a deep scrub finds nothing more"

# --- 2. ext4 on an EC volume; an OSD down: reads decode ----------------------
cli volume create vm --size 256M --pool ec >/dev/null
nbd_start
base=$uri
nbdfuse "$fuse/disk" "$base/vm" &
for _ in $(seq 50); do [ -e "$fuse/disk" ] && break; sleep 0.1; done
mkfs.ext4 -q -F "$fuse/disk" || fail "mkfs.ext4"
mount -o loop "$fuse/disk" "$mnt" || fail "mount"
cp -r "$(dirname "$0")/../../osd" "$mnt/"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums"
umount "$mnt"
# same_files: fsck clean and every file as written, read-only (no
# journal replay: nothing is written).
same_files() {
	fsck.ext4 -fn "$fuse/disk" >"$dir/fsck" 2>&1 || fail "fsck ($1): $(tail -5 "$dir/fsck")"
	mount -o loop,ro,noload "$fuse/disk" "$mnt" || fail "mount -o ro ($1)"
	(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) | cmp -s - "$dir/sums" ||
		fail "the files changed ($1)"
	umount "$mnt"
}
# (Cached pages would hide what the cluster returns.)
echo 3 >/proc/sys/vm/drop_caches
osd_kill 1
wait_for "s['osd']['up']==2" 20 "osd.1 down"
wait_for "s['pgs'].get('active+degraded+undersized+read_only')==8" 30 "every PG read-only"
[[ "$(cli status)" == *"8 PGs read-only (fewer OSDs up than min_size: writes wait)"* ]] ||
	fail "status does not say the PGs are read-only: $(cli status)"
same_files "osd.1 down"
# A write waits (the client retries until its timeout), and nothing of it lands.
head -c 4096 /dev/urandom >"$dir/w"
if cli --timeout 3 object put ec 300:1 "$dir/w" >"$dir/put.out" 2>&1; then
	fail "a write into a read-only PG succeeded"
fi
grep -q "did not serve it in time: not active, or read-only with fewer OSDs up than min_size" "$dir/put.out" ||
	fail "the write into a read-only PG: $(cat "$dir/put.out")"
osd_start 1
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.1 back"
echo "2. ext4 on a 2+1 volume: $(wc -l <"$dir/sums") files; osd.1 down: fsck clean, every file the same"

# --- 3. min_size 2: writes while an OSD is down, then its chunks rebuilt -----
cli pool set ec min_size 2 >/dev/null
mount -o loop "$fuse/disk" "$mnt" || fail "mount for writing"
osd_kill 2
wait_for "s['osd']['up']==2" 20 "osd.2 down"
cp -r "$(dirname "$0")/../../common" "$mnt/"
sync -f "$mnt"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums"
umount "$mnt"
osd_start 2
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.2 back, its chunks rebuilt"
found=$(pgs_sum bad_copies_found)
deep_scrub_all
[ "$(pgs_sum bad_copies_found)" = "$found" ] || fail "the deep scrubs found bad chunks: $(cat "$dir/scrub.out")"
echo 3 >/proc/sys/vm/drop_caches
same_files "after osd.2's chunks were rebuilt"
echo "3. min_size 2: $(wc -l <"$dir/sums") files written with osd.2 down; back, rebuilt; deep scrubs clean"
fusermount3 -u "$fuse" 2>/dev/null || umount "$fuse"

# --- 4. snapshots, snap diff and clones ----------------------------------------
M=1048576
cli snap create vm@s1 >/dev/null
qemu-img convert -f raw -O raw "$base/vm@s1" "$dir/s1.img" || fail "copying vm@s1 out"
head -c $M /dev/urandom >"$dir/patch"
qemu-io -f raw "$base/vm" -c "write -s $dir/patch $((8 * M + 4096)) $M" >"$dir/qio" 2>&1 ||
	fail "qemu-io write: $(cat "$dir/qio")"
qemu-img convert -f raw -O raw "$base/vm" "$dir/now.img" || fail "copying vm out"
cli --json snap diff vm@s1 >"$dir/diff.json" || fail "snap diff vm@s1"
python3 - "$dir/s1.img" "$dir/now.img" "$dir/diff.json" <<'PY' || fail "snap diff vm@s1 on the EC pool: $(cat "$dir/diff.json")"
import json, sys
a, b, d = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), json.load(open(sys.argv[3]))
bs = 256 << 10
changed = {i for i in range(0, len(b), bs) if a[i:i + bs] != b[i:i + bs]}
listed = {i for e in d["extents"] for i in range(e["offset"], e["offset"] + e["length"], bs)}
assert changed == listed == {8 * bs * 4 + k * bs for k in range(5)}, (sorted(changed), sorted(listed))
PY
cli snap protect vm@s1 >/dev/null
cli volume clone vm@s1 c1 --pool ec >/dev/null || fail "volume clone vm@s1 c1"
qemu-img convert -f raw -O raw "$base/c1" "$dir/c1.img" || fail "copying c1 out"
cmp -s "$dir/s1.img" "$dir/c1.img" || fail "the clone does not read as the snapshot"
qemu-io -f raw "$base/c1" -c "write -P 0x5a 0 $M" >"$dir/qio" 2>&1 || fail "writing the clone: $(cat "$dir/qio")"
qemu-img convert -f raw -O raw "$base/vm@s1" "$dir/s1.again" || fail "copying vm@s1 out again"
cmp -s "$dir/s1.img" "$dir/s1.again" || fail "the snapshot changed under its clone's write"
qemu-io -f raw "$base/c1" -c "read -P 0x5a 0 $M" >"$dir/qio" 2>&1 && ! grep -q "Pattern verification failed" "$dir/qio" ||
	fail "the clone's write did not read back: $(cat "$dir/qio")"
echo "4. snapshot, snap diff (the 5 objects 1 MiB touched), clone on the EC pool: as a replicated pool's"

# --- 5. space: 1.5 raw bytes per stored byte ---------------------------------
used0=$(used_settled)
stored0=$(js "[p for p in s['pool_usage'] if p['name']=='ec'][0]['stored_bytes']")
cli volume create whole --size 64M --pool ec >/dev/null
head -c $((64 << 20)) /dev/urandom >"$dir/whole"
nbdcopy "$dir/whole" "$base/whole" 2>"$dir/copy.err" || fail "nbdcopy: $(cat "$dir/copy.err")"
used1=$(used_settled)
read -r stored raw <<<"$(js "' '.join(str(p[k]) for p in s['pool_usage'] if p['name']=='ec' for k in ('stored_bytes', 'raw_bytes'))")"
python3 - "$used0" "$used1" "$stored0" "$stored" "$raw" <<'PY' || fail "space: used $used0 -> $used1, stored $stored0 -> $stored, raw $raw"
import sys
used0, used1, stored0, stored, raw = map(int, sys.argv[1:])
grown, wrote = used1 - used0, stored - stored0
assert wrote == 64 << 20, f"the pool stores {wrote} bytes more for a 64 MiB volume written whole"
assert raw == stored * 3 // 2, f"raw {raw} for {stored} stored"
# The OSDs' own count: the chunks, and a little metadata.
assert 1.5 <= grown / wrote < 1.56, f"the OSDs use {grown} bytes more ({grown / wrote:.3f} per byte)"
print(f"5. space: 64 MiB written whole take {grown / wrote:.3f} raw bytes per byte on the OSDs; status: {raw / stored:.2f}")
PY
# volume du: what the volume stores, and 1.5 times that raw.
cli --json volume du whole | python3 -c "
import json, sys
v = json.load(sys.stdin)['volumes'][0]
assert v['stored_bytes'] == 64 << 20 and v['raw_bytes'] == 96 << 20, v
" || fail "volume du whole: $(cli --json volume du whole)"
echo PASS
