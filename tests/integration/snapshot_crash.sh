#!/usr/bin/env bash
# kill -9 in the middle of snapshot commands, on a local cluster (3
# monitors, 3 OSDs): an OSD, then the monitor leader, during `snap create`
# and during `snap rm`. Afterwards a snapshot exists completely (it reads
# exactly what the volume held before it) or not at all; a removal cut
# short is finished by running it again; once every snapshot is gone the
# OSDs hold exactly the live volume's blocks (the returning OSD dropped the
# clones removed while it was down), and every store passes fsck.
#   snapshot_crash.sh BUILD_DIR [--seed N]
set -euo pipefail
build=$(cd "${1:?usage: snapshot_crash.sh BUILD_DIR [--seed N]}" && pwd)
seed=${3:-$RANDOM}
RANDOM=$seed
echo "snapshot_crash: seed $seed"
dir=$(mktemp -d /tmp/basalt-snapcrash.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
bg=
cleanup() {
	[ -z "$bg" ] || kill "$bg" 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v qemu-io >/dev/null || fail "qemu-io is missing (scripts/install-deps.sh installs it)"

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
mon_osd_beacon_grace = 4s
mon_osd_down_out_interval = 0"
osd_conf_local 256M h0 h1 h2
cluster_start
cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null
cli volume create vm --size 8M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
nbd_start
block=131072
kill_one() { { kill -9 "${pid[$1]}"; wait "${pid[$1]}"; } 2>/dev/null || true; }
qio() { qemu-io -f raw "$@" >"$dir/qio.out" 2>&1 || fail "qemu-io $*: $(cat "$dir/qio.out")"; }
data_bytes() { js "sum(o.get('data_bytes', 0) - o.get('available_bytes', 0) for o in s['fullness']['osds'])"; }
has_snap() { cli --json snap ls vm | python3 -c "import json,sys; print(any(s['name']=='$1' for s in json.load(sys.stdin)['snapshots']))"; }
clean() { wait_for "s['pgs'].get('active+clean')==16 and s['osd']['up']==3" 60 "PGs active+clean"; }

qio -c "write -P 0x10 0 8M" "$uri/vm"
sleep 2
base=$(data_bytes)

# crash_during VICTIM COMMAND...: runs the command, kills VICTIM (osd.N or
# "leader") 0-0.4 s into it, restarts it; the command's status in $dir/rc.
crash_during() {
	local victim=$1
	shift
	{ cli "$@" >"$dir/cmd.out" 2>&1; echo $? >"$dir/rc"; } &
	bg=$!
	sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	if [ "$victim" = leader ]; then
		local l
		l=$(leader) || fail "no leader"
		kill_one "mon.$l"
		sleep 0.5
		mon_start "$l"
	else
		kill_one "$victim"
		sleep 1
		osd_start "${victim#osd.}"
	fi
	wait "$bg" || true
	bg=
	echo "  $* with $victim killed: exit $(cat "$dir/rc") $(head -c 200 "$dir/cmd.out")"
}

# A snapshot that exists reads exactly what the volume held before it.
round=0
for victim in "osd.$((RANDOM % 3))" leader; do
	round=$((round + 1))
	crash_during "$victim" snap create "vm@c$round"
	clean
	if [ "$(has_snap "c$round")" = True ]; then
		qio -r -c "read -P 0x10 0 8M" "$uri/vm@c$round"
		echo "  vm@c$round exists and holds the volume as it was"
	else
		echo "  vm@c$round does not exist"
		cli snap create "vm@c$round" >/dev/null || fail "snap create vm@c$round again"
		qio -r -c "read -P 0x10 0 8M" "$uri/vm@c$round"
	fi
done
# Both snapshots share every block: overwrite half the volume, which makes
# one clone per object (for c2, serving c1 too).
qio -c "write -P 0x20 0 4M" "$uri/vm"
sleep 2
[ "$(data_bytes)" = $((base + 32 * 3 * block)) ] || sleep 3
[ "$(data_bytes)" = $((base + 32 * 3 * block)) ] ||
	fail "after the overwrite: $(data_bytes) data bytes, not $((base + 32 * 3 * block))"
qio -r -c "read -P 0x10 0 8M" "$uri/vm@c1"
qio -r -c "read -P 0x10 0 8M" "$uri/vm@c2"

# Removals: c2 with the leader killed (its clones stay needed by c1:
# nothing freed), then c1 with an OSD killed during it; each run again
# until it is gone. Then, with an OSD down the whole time, a snapshot made
# and removed: the OSD comes back holding clones the others deleted, and
# drops them before it is clean.
again() { # again SNAP: finishes a removal a kill may have cut short
	if [ "$(has_snap "$1")" = True ] || [ "$(cat "$dir/rc")" != 0 ]; then
		cli snap rm "vm@$1" >"$dir/out" 2>&1 || grep -q "has no snapshot" "$dir/out" ||
			fail "snap rm vm@$1 again: $(cat "$dir/out")"
	fi
	[ "$(has_snap "$1")" = False ] || fail "vm@$1 is still there"
}
crash_during leader snap rm vm@c2
clean
again c2
qio -r -c "read -P 0x10 0 8M" "$uri/vm@c1"
crash_during "osd.$((RANDOM % 3))" snap rm vm@c1
clean
again c1
away=$((RANDOM % 3))
cli snap create vm@d >/dev/null
qio -c "write -P 0x30 4M 2M" "$uri/vm"
kill_one "osd.$away"
wait_for "s['osd']['up']==2" 30 "osd.$away marked down"
cli snap rm vm@d >"$dir/out" 2>&1 || fail "snap rm vm@d with osd.$away down: $(cat "$dir/out")"
echo "  vm@d removed with osd.$away down: $(head -1 "$dir/out")"
osd_start "$away"
clean
qio -r -c "read -P 0x20 0 4M" -c "read -P 0x30 4M 2M" -c "read -P 0x10 6M 2M" "$uri/vm"
for _ in $(seq 100); do [ "$(data_bytes)" = "$base" ] && break; sleep 0.2; done
[ "$(data_bytes)" = "$base" ] || fail "after every snapshot went: $(data_bytes) data bytes, not $base"
clones=$(cli object ls rbd | grep -c "@" || true)
[ "$clones" = 0 ] || fail "$clones clones left"
echo "  every snapshot removed: the OSDs hold exactly the live volume"
for i in 0 1 2; do kill_one "osd.$i"; done
for i in 0 1 2; do
	"$build/basalt-osd" --fsck --device "$dir/osd.$i.img" >"$dir/fsck.$i" 2>&1 ||
		fail "fsck osd.$i: $(cat "$dir/fsck.$i")"
done
echo "snapshot_crash: ok (fsck clean on every OSD)"
