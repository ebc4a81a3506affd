#!/usr/bin/env bash
# A thin volume bigger than the cluster, filled with 4 KiB random writes
# through basalt-nbd (issue 14's reproduction, smaller): the writes get
# ENOSPC within seconds of the full ratio and nothing hangs (through
# basalt-fuse too); every write
# acknowledged before reads back intact, through a kill -9 of an OSD
# while full (it comes back, serves, and its store checks clean); health
# says which OSDs are full; a full-volume discard gives the space back at
# once and the cluster takes writes again, which verify.
#   full_nbd.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: full_nbd.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-fullnbd.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
tagged="$(dirname "$0")/nbd_tagged.py"
trap 'cluster_cleanup; fusermount3 -u -z "$dir/mnt" 2>/dev/null || true; rm -rf "$dir"' EXIT

cluster_up_local 128M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 32 >/dev/null
cli volume create a --size 1G >/dev/null
cli volume create b --size 1G >/dev/null
wait_for "s['pgs'].get('active+clean')==32" 30 "PGs active+clean"

nbd_start

# 1. Fill: 4 KiB writes into new objects at QD16 until the cluster says
# no. A bounded run: a hang is a failure, not a stuck test.
timeout -k 5 120 "$tagged" fill "$uri/a" "$dir/a.log" --seconds 90 >"$dir/fill.json" ||
	fail "filling did not end on ENOSPC: $(cat "$dir/fill.json")"
python3 - "$dir/fill.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["acked"] > 100 and r["enospc"] > 0 and r["other_errors"] == 0, r
print(f'filled: {r["acked"]} writes acknowledged, then ENOSPC after {r["seconds_to_enospc"]:.2f} s')
PY
wait_for "'OSDs full' in s['health'] or 'OSD full' in s['health']" 20 "health naming the full OSDs"
js "s['health']"
wait_for "all(p['full'] for p in s['pool_usage'])" 10 "pool rbd shown full"

# 2. fio on the other volume: ENOSPC at once, never a hang.
timeout -k 5 60 fio --name=w --ioengine=nbd --uri="$uri/b" --rw=randwrite --bs=4k --iodepth=16 \
	--size=1G --runtime=30 --time_based --output-format=json --output="$dir/fio.json" \
	>"$dir/fio.err" 2>&1 && fail "fio wrote into a full cluster"
[ $? -ne 124 ] || fail "fio hung on the full cluster"
python3 - "$dir/fio.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["error"] == 28, j["error"]
print(f'fio on the full cluster: error {j["error"]} (ENOSPC) after {j["write"]["total_ios"]} writes')
PY

# 2b. The same through basalt-fuse: a write fails with ENOSPC.
mkdir -p "$dir/mnt"
"$build/basalt-fuse" "$dir/mnt" -c "$dir/basalt.conf" -f --log-file "$dir/fuse.log" &
pid[fuse]=$!
for _ in $(seq 50); do [ -e "$dir/mnt/volumes/b" ] && break; sleep 0.1; done
timeout -k 5 60 dd if=/dev/urandom of="$dir/mnt/volumes/b" bs=4k count=64 seek=1000 \
	oflag=direct conv=notrunc 2>"$dir/dd.err" && fail "a write through basalt-fuse into a full cluster"
grep -q "No space left on device" "$dir/dd.err" || fail "basalt-fuse's write: $(cat "$dir/dd.err")"
echo "basalt-fuse on the full cluster: $(grep -o 'No space left on device' "$dir/dd.err" | head -1)"
kill -TERM "${pid[fuse]}"
wait "${pid[fuse]}" 2>/dev/null || true
unset "pid[fuse]"

# 3. Reads work on the full cluster; every acknowledged write is there.
"$tagged" check "$uri/a" "$dir/a.log" || fail "an acknowledged write is not intact"

# 4. kill -9 an OSD while full: it restarts, its store checks clean, it
# serves; the data is still all there.
osd_kill 1
"$build/basalt-osd" --fsck --device "$dir/osd.1.img" >"$dir/fsck.out" 2>&1 ||
	fail "fsck of the full store: $(tail -3 "$dir/fsck.out")"
grep "^blocks:" "$dir/fsck.out"
osd_start 1
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==32" 60 "osd.1 back and PGs clean"
"$tagged" check "$uri/a" "$dir/a.log" || fail "an acknowledged write is lost after the restart"

# 5. Freeing works on the full cluster and is immediate.
qemu-io -d unmap -f raw -c 'discard 0 1G' "$uri/a" >/dev/null || fail "discard on a full cluster"
wait_for "s['usage']['stored_bytes'] == 0" 10 "space back after the discard"
wait_for "s['health'] == 'OK'" 20 "health OK once space is back"
timeout -k 5 120 fio --name=v --ioengine=nbd --uri="$uri/b" --rw=write --bs=64k --iodepth=4 \
	--size=32M --verify=crc32c --verify_fatal=1 >"$dir/fio2.err" 2>&1 ||
	fail "writing after the discard: $(tail -5 "$dir/fio2.err")"
echo "after the discard: 32 MiB written and verified"
echo PASS
