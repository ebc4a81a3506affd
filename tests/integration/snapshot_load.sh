#!/usr/bin/env bash
# Snapshots taken while fio writes through basalt-nbd at QD32, on a local
# cluster (3 monitors, 3 OSDs):
#  - fio (4 KiB blocks, each holding its own offset: verify_pattern=%o,
#    over a region filled first) overwrites at random at QD32 while
#    `snap create` runs twice, without stopping it;
#  - every 4 KiB block of each snapshot, read back through
#    nbd://.../vm@SNAP, is whole and the one of its offset (no torn, lost
#    or misplaced block: fio --verify_only over the export), and so is the
#    live volume at the end;
#  - markers written with qemu-io on another region: the one acknowledged
#    before `snap create` started is in the snapshot, the one written
#    after it returned is not (and is in the live volume);
#  - removing the snapshots afterwards frees their clones (no clone left).
#   snapshot_load.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: snapshot_load.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-snapload.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
fio_pid=
cleanup() {
	[ -z "$fio_pid" ] || kill -9 "$fio_pid" 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in fio qemu-io; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 512M
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm --size 48M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
nbd_start

# The fio job: the first 32 MiB, 4 KiB blocks, each block's bytes its
# own offset (the same on every pass: a snapshot holds a mix of passes;
# which side a write is on is what the markers below check).
job=(--name=load --ioengine=nbd --uri="$uri/vm" --bs=4k --size=32M --verify=pattern
	--verify_pattern=%o --verify_fatal=1)
fio "${job[@]}" --rw=write --iodepth=8 --do_verify=0 >"$dir/fill.out" 2>&1 ||
	fail "fio fill: $(tail -5 "$dir/fill.out")"

fio "${job[@]}" --rw=randwrite --iodepth=32 --do_verify=0 --time_based --runtime=14 \
	--output-format=json --output="$dir/load.json" >"$dir/load.err" 2>&1 &
fio_pid=$!
marker() { # marker PATTERN: writes 64 KiB of PATTERN at 40M, acknowledged on return
	qemu-io -f raw -c "write -P $1 40M 64K" "$uri/vm" >"$dir/qio.out" 2>&1 ||
		fail "marker $1: $(cat "$dir/qio.out")"
}
sleep 3
marker 0x5a
cli snap create vm@a >/dev/null || fail "snap create vm@a under load"
marker 0xa5
sleep 4
marker 0x3c
cli snap create vm@b >/dev/null || fail "snap create vm@b under load"
marker 0xc3
wait "$fio_pid" || fail "fio under snapshots: $(tail -5 "$dir/load.err")"
fio_pid=
python3 - "$dir/load.json" <<'PY' || fail "fio's load"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["error"] == 0, j["error"]
print(f'fio: {j["write"]["total_ios"]} random 4 KiB writes at QD32 '
      f'({j["write"]["iops"]:.0f} IOPS) while two snapshots were taken')
PY

# Every block of each snapshot and of the live volume is fio's, whole.
for export in vm@a vm@b vm; do
	fio --name=check --ioengine=nbd --uri="$uri/$export" --bs=4k --size=32M --rw=read \
		--verify=pattern --verify_pattern=%o --verify_fatal=1 --verify_only=1 --iodepth=16 \
		>"$dir/check.out" 2>&1 || fail "$export has a block fio did not write: $(tail -5 "$dir/check.out")"
done
echo "every 4 KiB block of vm@a, vm@b and vm verifies"
check() { # check EXPORT PATTERN
	qemu-io -f raw -r -c "read -P $2 40M 64K" "$uri/$1" >"$dir/qio.out" 2>&1 ||
		fail "$1 does not hold $2 at 40M: $(cat "$dir/qio.out")"
}
check vm@a 0x5a
check vm@b 0x3c
check vm 0xc3
echo "markers: acknowledged before each snapshot in it, written after it returned not"

cli snap rm vm@a >/dev/null
cli snap rm vm@b >/dev/null
clones=$(cli object ls rbd | grep -c "@" || true)
[ "$clones" = 0 ] || fail "$clones clones left after both snapshots were removed"
echo "snapshot_load: ok"
