#!/usr/bin/env bash
# Basalt's main job, as far as it goes today: install dependencies, build,
# and run a small cluster on this machine: three monitors and three OSDs on
# loopback (the OSDs on three pretend hosts), a pool keeping three copies,
# objects written and read back, an OSD killed (writes go on, degraded)
# and brought back (it recovers what changed), a volume served over NBD
# by basalt-nbd with an ext4 filesystem on it (through nbdfuse, mounted
# with -o loop), the same volume as a file under basalt-fuse and taken
# over by a second client that fences the first, and the monitor leader
# killed and replaced. Everything it starts it stops. Later stages extend
# this script: snapshots, backups.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null
echo "   built: build/basalt-mon build/basalt-osd build/basalt build/basalt-nbd build/basalt-fuse"

build=$PWD/build
dir=$(mktemp -d /tmp/basalt-demo.XXXXXX)
. tests/integration/cluster_lib.sh
mnt=$dir/mnt fuse=$dir/fuse fa=$dir/fuse-a fb=$dir/fuse-b
mkdir -p "$mnt" "$fuse" "$fa" "$fb"
cleanup() {
	exec 4<&- 2>/dev/null || true
	mountpoint -q "$mnt" && umount "$mnt"
	for m in "$fuse" "$fa" "$fb"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
show() { printf '$ basalt %s\n' "$*"; cli "$@" 2>/dev/null | sed 's/^/  /'; }
wait_osd() { # wait_osd ID up|down
	for _ in $(seq 150); do
		cli --json osd ls 2>/dev/null | python3 -c "import json,sys
o=[o for o in json.load(sys.stdin) if o['id']==$1]
sys.exit(0 if o and o[0]['up']==('$2'=='up') else 1)" && return 0
		sleep 0.1
	done
	fail "osd.$1 did not go $2"
}

step "a cluster in $dir: monitors a, b, c and osd.0-2 on hosts h1-h3"
cluster_conf_local "osd_heartbeat_interval = 500ms
osd_heartbeat_grace = 3s"
osd_conf_local 256M h1 h2 h3
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no monitor leader"
for i in 0 1 2; do osd_start "$i"; done
for i in 0 1 2; do wait_osd "$i" up; done
show pool create rbd --size 3 --pg-num 16
show osd tree
wait_pgs() { # wait_pgs STATE: every PG in that state
	for _ in $(seq 150); do
		cli --json status 2>/dev/null | python3 -c "import json,sys
s=json.load(sys.stdin); sys.exit(0 if s['pgs'].get('$1')==16 else 1)" && return 0
		sleep 0.2
	done
	fail "the PGs did not become $1: $(cli status)"
}
wait_pgs active+clean

step "objects with three copies: written, read back, listed"
for k in 1 2 3 4 5 6 7 8; do
	head -c $((k * 16384)) /dev/urandom >"$dir/obj.$k"
	printf '$ basalt object put rbd a:%s FILE  ' "$k"
	cli object put rbd "a:$k" "$dir/obj.$k"
done
for k in 1 2 3 4 5 6 7 8; do
	cli object get rbd "a:$k" "$dir/back.$k" && cmp -s "$dir/obj.$k" "$dir/back.$k" ||
		fail "object a:$k came back different"
done
echo "  all 8 read back byte for byte"
show object ls rbd
for _ in $(seq 50); do # the OSDs report usage every 2 s
	cli --json status | python3 -c "import json,sys; sys.exit(json.load(sys.stdin)['usage']['objects'] != 8)" && break
	sleep 0.2
done
show status

step "kill -9 osd.2: its peers report it, the monitors mark it down, writes go on"
osd_kill 2
t0=$(date +%s%N)
wait_osd 2 down
echo "  marked down after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait_pgs active+degraded+undersized
for k in 1 2 3; do
	head -c 16384 /dev/urandom >"$dir/obj.$k"
	cli object put rbd "a:$k" "$dir/obj.$k" >/dev/null
done
echo "  3 objects rewritten with two copies"
show status
osd_start 2
wait_osd 2 up
wait_pgs active+clean
cli --json status | python3 -c "import json,sys
r=json.load(sys.stdin)['recovery']
print('  osd.2 restarted; recovery copied %d objects (the 3 that changed while it was away)' % r['recovered_objects'])"
show status

step "a 1 GiB volume served over NBD, ext4 on it through nbdfuse"
show volume create vm1 --size 1G --pool rbd
read -r port < <(free_ports 1)
"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd.log" --listen "127.0.0.1:$port" &
pid[nbd]=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/nbd.log" 2>/dev/null && break; sleep 0.1; done
uri=nbd://127.0.0.1:$port/vm1
echo "$ basalt-nbd --listen 127.0.0.1:$port"
echo "$ nbdinfo $uri"
nbdinfo "$uri" | grep -E "export-size|block_size|can_trim|can_multi_conn" | sed 's/^/  /'
nbdfuse "$fuse/disk" "$uri" &
pid[nbdfuse]=$!
for _ in $(seq 50); do [ -e "$fuse/disk" ] && break; sleep 0.1; done
echo "$ nbdfuse $fuse/disk $uri; mkfs.ext4 $fuse/disk; mount -o loop $fuse/disk $mnt"
mkfs.ext4 -q -F "$fuse/disk" || fail "mkfs.ext4"
mount -o loop "$fuse/disk" "$mnt" || fail "mount"
cp -r osd common client "$mnt/"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums"
echo "  copied $(wc -l <"$dir/sums") files ($(du -sh "$mnt" | cut -f1)) into it"
umount "$mnt"
fsck.ext4 -fn "$fuse/disk" >/dev/null 2>&1 || fail "fsck.ext4 found errors"
mount -o loop "$fuse/disk" "$mnt" || fail "remount"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) | cmp -s - "$dir/sums" ||
	fail "the files changed across a remount"
echo "  unmounted, fsck.ext4 -fn clean, remounted: every file's sha256 the same"
umount "$mnt"
fusermount3 -u "$fuse" 2>/dev/null || umount "$fuse"
wait "${pid[nbdfuse]}" 2>/dev/null || true
unset 'pid[nbdfuse]'
show volume info vm1
cat <<MSG
  A VM boots from it directly, qemu being the NBD client:
    qemu-system-x86_64 -drive file=$uri,format=raw,if=virtio,cache=none,discard=unmap ...
  (on a kernel with the nbd module: nbd-client -N vm1 127.0.0.1 $port /dev/nbd0)
MSG

step "the same volume as a file (basalt-fuse), and a takeover that fences the old client"
kill "${pid[nbd]}"
wait "${pid[nbd]}" 2>/dev/null || true
unset 'pid[nbd]'
"$build/basalt-fuse" "$fa" -f -c "$dir/basalt.conf" --log-file "$dir/fuse-a.log" &
pid[fuse-a]=$!
for _ in $(seq 50); do grep -q "mounted on" "$dir/fuse-a.log" 2>/dev/null && break; sleep 0.1; done
echo "$ basalt-fuse $fa; ls -l $fa/volumes"
ls -l "$fa/volumes" | sed 's/^/  /'
mount -o loop "$fa/volumes/vm1" "$mnt"
echo "$ mount -o loop $fa/volumes/vm1 $mnt: $(find "$mnt" -type f | wc -l) files, as basalt-nbd left them"
umount "$mnt"
exec 4<>"$fa/volumes/vm1" # client A keeps it open for writing: A holds the lock
show volume info vm1
"$build/basalt-fuse" "$fb" -f -c "$dir/basalt.conf" --log-file "$dir/fuse-b.log" 4<&- &
pid[fuse-b]=$!
for _ in $(seq 50); do grep -q "mounted on" "$dir/fuse-b.log" 2>/dev/null && break; sleep 0.1; done
echo "$ (a second client) mount -o loop $fb/volumes/vm1 ..."
(exec 3<>"$fb/volumes/vm1") 2>&1 | sed 's/^.*: /  refused: /' || true
grep -o "volume 'vm1' is locked by .*" "$dir/fuse-b.log" | head -1 | sed 's/^/  its log: /'
kill -STOP "${pid[fuse-a]}"
echo "  client A freezes (kill -STOP); B takes over: basalt-fuse --break-lock"
kill "${pid[fuse-b]}"
wait "${pid[fuse-b]}" 2>/dev/null || true
"$build/basalt-fuse" "$fb" -f -c "$dir/basalt.conf" --log-file "$dir/fuse-b2.log" --break-lock 4<&- &
pid[fuse-b]=$!
for _ in $(seq 50); do grep -q "mounted on" "$dir/fuse-b2.log" 2>/dev/null && break; sleep 0.1; done
(exec 3<>"$fb/volumes/vm1") && echo "  B opened vm1 for writing"
show blocklist ls
kill -CONT "${pid[fuse-a]}"
for _ in $(seq 50); do grep -q "was fenced" "$dir/fuse-a.log" && break; sleep 0.1; done
grep -o "this client .* was fenced.*" "$dir/fuse-a.log" | head -1 | sed 's/^/  A, resumed: /'
exec 4<&-
for p in fuse-a fuse-b; do kill "${pid[$p]}"; wait "${pid[$p]}" 2>/dev/null || true; unset "pid[$p]"; done

step "kill -9 the monitor leader: the other two elect a new one"
l=$(leader)
{ kill -9 "${pid[mon.$l]}"; wait "${pid[mon.$l]}"; } 2>/dev/null || true
t0=$(date +%s%N)
while [ "$(leader)" = "$l" ]; do sleep 0.05; done
echo "  mon.$l killed; mon.$(leader) leads after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
show pool create after-failover
show mon ls

cat <<'MSG'

Next: snapshots and clones, backups to S3 (see README.md). Run the whole test suite
with scripts/test.sh; a local cluster to play with: scripts/cluster.sh up.
MSG
