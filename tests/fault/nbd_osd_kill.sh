#!/usr/bin/env bash
# fio through basalt-nbd, verifying every block it wrote (crc32c, checked
# as it goes and again at the end), while OSDs are killed with SIGKILL and
# restarted one after another: the client sees no I/O error and no
# verification error, and every PG is active+clean afterwards. With
# --ec K+M the volume's pool is erasure-coded (min_size K: writes go on
# while an OSD is down, read back from the chunks left), and at the end a
# deep scrub of every PG (parity against data) finds nothing wrong.
#   nbd_osd_kill.sh BUILD_DIR [--seconds N] [--ec K+M]   (default 30)
set -euo pipefail
build=$(cd "${1:?usage: nbd_osd_kill.sh BUILD_DIR [--seconds N] [--ec K+M]}" && pwd)
shift
seconds=30 ec=
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
	--ec) ec=${2:?--ec needs K+M}; shift 2 ;;
	*) echo "nbd_osd_kill.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
dir=$(mktemp -d /tmp/basalt-nbdkill.XXXXXX)
. "$(dirname "$0")/../integration/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
command -v fio >/dev/null || fail "fio is missing (scripts/install-deps.sh installs it)"

cluster_up_local 1G "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
if [ -n "$ec" ]; then
	cli pool create rbd --ec "$ec" --min-size "${ec%+*}" --pg-num 16 >/dev/null
else
	cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null
fi
cli volume create vm1 --size 64M --pool rbd >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

nbd_start
uri=$uri/vm1

# Two jobs on two connections: 4 KiB random writes at QD16 over the first
# 32 MiB, 64 KiB ones at QD4 over the second; verify_backlog reads back
# and checks what was written every 256 writes, during the kills.
fio --output-format=json --output="$dir/fio.json" --ioengine=nbd --uri="$uri" \
	--rw=randwrite --verify=crc32c --verify_fatal=1 --verify_backlog=256 \
	--verify_state_save=0 --time_based --runtime="$seconds" \
	--name=small --bs=4k --iodepth=16 --offset=0 --size=32m \
	--name=large --bs=64k --iodepth=4 --offset=32m --size=32m \
	>"$dir/fio.err" 2>&1 &
fio_pid=$!

kills=0
for victim in $(seq 0 100); do
	victim=$((victim % 3))
	sleep 2
	kill -0 "$fio_pid" 2>/dev/null || break
	osd_kill "$victim"
	kills=$((kills + 1))
	sleep 3
	osd_start "$victim"
	wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==16" 60 \
		"osd.$victim back and every PG clean"
done
wait "$fio_pid" || fail "fio failed: $(tail -20 "$dir/fio.err")"
fio_verified "$dir/fio.json" || fail "fio: $(cat "$dir/fio.err")"
[ "$kills" -ge 2 ] || fail "only $kills OSD kills happened during the run"
wait_for "s['pgs'].get('active+clean')==16" 60 "every PG clean at the end"
echo "fio through NBD: no I/O or verification error across $kills OSD kills"
if [ -n "$ec" ]; then
	# Every chunk's parity against its data, after the kills and rebuilds.
	for pg in $(cli --json pg ls rbd | python3 -c 'import json,sys; print(*[p["pgid"] for p in json.load(sys.stdin)])'); do
		cli pg deep-scrub "$pg" --wait >>"$dir/scrub.out" 2>&1 ||
			fail "deep scrub of pg $pg: $(tail -3 "$dir/scrub.out")"
	done
	bad=$(cli --json pg ls rbd | python3 -c 'import json,sys; print(sum(p["bad_copies_found"] for p in json.load(sys.stdin)))')
	[ "$bad" = 0 ] || fail "the deep scrub after the kills found $bad bad chunks: $(cat "$dir/scrub.out")"
	echo "deep scrub of every PG: parity agrees with data everywhere"
fi
echo PASS
