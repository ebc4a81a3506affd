#!/usr/bin/env bash
# Snapshots on a local cluster (3 monitors, 3 OSDs), written and read
# through basalt-nbd with qemu-io:
#  - a snapshot keeps what the volume held: whole-object overwrites,
#    4 KiB writes into an object and discards after it leave the snapshot
#    (exported read-only as nbd://.../VOL@SNAP) as it was, the live volume
#    changed; writes to the snapshot's export are refused; block status
#    shows each one's own holes;
#  - each changed object costs exactly one block per copy (the OSDs' data
#    bytes, exact), snap ls says what each snapshot references and holds
#    alone, and snap rm frees exactly that at once, in any order, until
#    the OSDs hold what the live volume needs and nothing more;
#  - an OSD backfilled from an empty store gets heads and clones back, and
#    the cluster holds exactly the space it held before;
#  - a consistency group (two volumes in one snap create), the old
#    `volume snap` spelling, and the refusals: bad names, duplicates,
#    unknown volumes or snapshots, each one line, nothing changed.
#   snapshots.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: snapshots.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-snap.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v qemu-io >/dev/null || fail "qemu-io is missing (scripts/install-deps.sh installs it)"

volumes_up 256M vm=16M data=4M
block=131072

# qio ARGS...: one qemu-io run that must succeed, on the URI last.
qio() { qemu-io -f raw "$@" >"$dir/qio.out" 2>&1 || fail "qemu-io $*: $(cat "$dir/qio.out")"; }
# data_bytes: the OSDs' data blocks in use or held back, summed (beacons).
data_bytes() { js "sum(o.get('data_bytes', 0) - o.get('available_bytes', 0) for o in s['fullness']['osds'])"; }
# settle WANT WHAT: until the OSDs report WANT data bytes.
settle() {
	for _ in $(seq 100); do [ "$(data_bytes)" = "$1" ] && return 0; sleep 0.2; done
	fail "$2: the OSDs hold $(data_bytes) data bytes, not $1 (per OSD: $(js "[o.get('data_bytes', 0) - o.get('available_bytes', 0) for o in s['fullness']['osds']]"); $(cli object ls rbd | grep -c @) clones listed)"
}
# snap_json VOL EXPR: a Python expression over u, `snap ls VOL --json`.
snap_json() {
	cli --json snap ls "$1" | python3 -c "import json,sys; u=json.load(sys.stdin); print($2)"
}

qio -c "write -P 0x11 0 16M" "$uri/vm"
qio -c "write -P 0x55 0 4M" "$uri/data"
# Every object written: 128 + 32 blocks on each of 3 OSDs (and the PGs'
# own records): the baseline the rest is measured against.
sleep 2
base=$(data_bytes)
echo "baseline: $base data bytes on the OSDs"

# --- a snapshot keeps the volume as it was ---------------------------------------------
cli snap create vm@s1 data@s1 >"$dir/out" || fail "snap create: $(cat "$dir/out")"
grep -q "vm@s1 data@s1 done" "$dir/out" || fail "snap create said: $(cat "$dir/out")"
qio -c "write -P 0x22 0 4M" -c "write -P 0x33 8196K 4K" -c "discard 12M 1M" \
	-c "write -P 0x66 16K 8K" "$uri/vm"
qio -c "write -P 0x77 0 4K" "$uri/data"
qio -r -c "read -P 0x11 0 16M" "$uri/vm@s1"
qio -r -c "read -P 0x55 0 4M" "$uri/data@s1"
qio -r -c "read -P 0x22 0 16K" -c "read -P 0x66 16K 8K" -c "read -P 0x22 24K 4072K" \
	-c "read -P 0x11 4M 4M" -c "read -P 0x11 8M 4K" -c "read -P 0x33 8196K 4K" \
	-c "read -P 0x11 8200K 120K" -c "read -P 0 12M 1M" -c "read -P 0x11 13M 3M" "$uri/vm"
qio -r -c "read -P 0x77 0 4K" -c "read -P 0x55 4K 4092K" "$uri/data"
# A snapshot's export is read-only (NBD_FLAG_READ_ONLY; writes EPERM).
if qemu-io -f raw -c "write -P 0x99 0 4K" "$uri/vm@s1" >"$dir/qio.out" 2>&1 &&
	! grep -qi "error\|denied\|read-only\|not permitted" "$dir/qio.out"; then
	fail "a write to vm@s1 went through: $(cat "$dir/qio.out")"
fi
qio -r -c "read -P 0x11 0 4K" "$uri/vm@s1"
nbdinfo "$uri/vm@s1" 2>/dev/null | grep -q "is_read_only: true" ||
	fail "vm@s1 is not exported read-only: $(nbdinfo "$uri/vm@s1" 2>&1)"
# BLOCK_STATUS: the snapshot has data where the live volume was discarded
# after it (12M-13M), and the live volume shows that hole.
nbdinfo --map "$uri/vm@s1" >"$dir/map" 2>&1 || fail "nbdinfo --map vm@s1: $(cat "$dir/map")"
[ "$(awk '{print $1, $2, $4}' "$dir/map")" = "0 16777216 data" ] ||
	fail "vm@s1's block status: $(cat "$dir/map")"
nbdinfo --map "$uri/vm" >"$dir/map" 2>&1 || fail "nbdinfo --map vm: $(cat "$dir/map")"
grep -Eq "^ *12582912 +1048576 +3 +hole,zero" "$dir/map" || fail "vm's block status: $(cat "$dir/map")"

# Clones: 32 whole objects, 1 with a 4 KiB write, 8 discarded (which
# kept their blocks for the snapshot), and data's first: one block per
# copy each, nothing more.
changed=$((32 + 1 + 1))
settle $((base + changed * 3 * block)) "after the writes following s1"
[ "$(snap_json vm "u['snapshots'][0]['exclusive_bytes']")" = $(((32 + 1 + 8) * block)) ] ||
	fail "s1 holds alone: $(cli snap ls vm)"
[ "$(snap_json vm "u['snapshots'][0]['referenced_bytes']")" = $((16 << 20)) ] ||
	fail "s1 references: $(cli snap ls vm)"
[ "$(snap_json vm "u['stored_bytes'] == u['referenced_bytes'] + u['snapshots_bytes']")" = True ] ||
	fail "live + snapshots != stored: $(cli --json snap ls vm)"
cli snap ls vm

# --- backfill: osd.2 replaced by an empty store gets every head and
# clone back, and the cluster holds exactly what it held before (no
# shared block turned into two).
kill -9 "${pid[osd.2]}"
wait "${pid[osd.2]}" 2>/dev/null || true
"$build/basalt-osd" --mkfs --force --device "$dir/osd.2.img" --size 256M >/dev/null 2>&1 ||
	fail "mkfs osd.2 again"
osd_start 2
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==16" 120 "backfill of osd.2"
settle $((base + changed * 3 * block)) "after osd.2 was backfilled"
qio -r -c "read -P 0x11 0 16M" "$uri/vm@s1"
echo "osd.2 backfilled from empty: heads and clones, the same space as before"

# --- a second snapshot, then removal in creation order ------------------------------
cli volume snap create vm s2 >/dev/null || fail "the older spelling volume snap create"
qio -c "write -P 0x44 0 1M" "$uri/vm"
settle $((base + (changed + 8) * 3 * block)) "after the writes following s2"
qio -r -c "read -P 0x22 0 16K" -c "read -P 0x66 16K 8K" -c "read -P 0x22 24K 4072K" \
	-c "read -P 0 12M 1M" "$uri/vm@s2"
cli --json snap rm vm@s1 >"$dir/rm.json" || fail "snap rm vm@s1"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['bytes_freed']==(32+1+8)*$block, d" \
	"$dir/rm.json" || fail "snap rm vm@s1 freed: $(cat "$dir/rm.json")"
# At once: the removal returned after every copy was deleted. Left: s2's
# 8 clones and data@s1's, and the 8 objects discarded after s1 are gone.
settle $((base + (8 + 1 - 8) * 3 * block)) "after snap rm vm@s1"
qio -r -c "read -P 0x22 0 16K" -c "read -P 0x66 16K 8K" -c "read -P 0x22 24K 4072K" \
	-c "read -P 0x11 4M 4M" -c "read -P 0x33 8196K 4K" -c "read -P 0 12M 1M" "$uri/vm@s2"
cli snap rm vm@s2 >/dev/null
cli snap rm data@s1 >/dev/null
# Only the live volume is left: 8 objects fewer than at first (discarded).
settle $((base - 8 * 3 * block)) "after every snapshot was removed"
[ "$(snap_json vm "(u['snapshots'], u['snapshots_bytes'], u['garbage_bytes'])")" = "([], 0, 0)" ] ||
	fail "snapshots left: $(cli --json snap ls vm)"
qio -r -c "read -P 0x44 0 1M" -c "read -P 0x22 1M 3M" -c "read -P 0x33 8196K 4K" "$uri/vm"

# --- refusals: one line each, nothing changed -------------------------------------------
epoch=$(cli --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')
refused() { # refused "MESSAGE" ARGS...: the command fails, saying MESSAGE
	local want=$1
	shift
	if cli "$@" >"$dir/out" 2>"$dir/err"; then fail "basalt $* succeeded"; fi
	grep -qF "$want" "$dir/err" || fail "basalt $* said: $(cat "$dir/err"), not: $want"
	[ "$(wc -l <"$dir/err")" = 1 ] || fail "basalt $* said more than one line: $(cat "$dir/err")"
}
refused "is not VOLUME@SNAPSHOT" snap create vm
refused "is not VOLUME@SNAPSHOT" snap create vm@a@b
refused "'a/b' is not a valid snapshot name" snap create vm@a/b
refused "volume 'nope' does not exist" snap create vm@x nope@x
refused "volume 'vm' has no snapshot 'gone'" snap rm vm@gone
cli snap create vm@x >/dev/null
refused "volume 'vm' already has a snapshot 'x'" snap create data@x vm@x
[ "$(snap_json data "len(u['snapshots'])")" = 0 ] || fail "a refused group left a snapshot"
cli snap rm vm@x >/dev/null
now=$(cli --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')
[ "$now" = $((epoch + 2)) ] || fail "refusals changed the map: epoch $epoch -> $now"
echo "snapshots: ok"
