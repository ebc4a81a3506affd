#!/usr/bin/env bash
# The cluster under fire: 3 monitors and 3 OSDs on loopback, a pool of
# size 3 / min_size 2. io_checker writes, overwrites, deletes and reads
# back objects (checking every read against what was acknowledged) while
# this script kills -9 a random OSD every few seconds and restarts it,
# and now and then kills the monitor leader too. Pass: io_checker saw no
# lost or stale acknowledged write, every PG is active+clean once the
# thrashing stops, and every OSD's store passes fsck. The objects are a
# volume's, and snapshots of it are taken and removed all along (any
# order, kill -9s landing in the middle of both): the live data stays
# right, and once the last snapshot is removed no clone is left anywhere
# (the snapshots' contents are checked by tests/sim and snapshots.sh).
# With --ec 2+1 the pool is erasure-coded instead, min_size 2 (K: writes
# go on with an OSD down, the riskier path), its objects 256 KiB.
#
#   thrash.sh BUILD_DIR [--seconds S] [--seed N] [--ec K+M]
#                                                   (default 40 s; longer by flag)
set -euo pipefail
build=$(cd "${1:?usage: thrash.sh BUILD_DIR [--seconds S] [--seed N] [--ec K+M]}" && pwd)
shift
seconds=40 seed=$RANDOM ec=
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--ec) ec=$2; shift 2 ;;
	*) echo "thrash.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
RANDOM=$seed
echo "thrash: $seconds s, seed $seed${ec:+, erasure-coded $ec}"
dir=$(mktemp -d /tmp/basalt-thrash.XXXXXX)
. "$(dirname "$0")/../integration/cluster_lib.sh"
checker_pid=
snapper_pid=
trap 'touch "$dir/stop-snaps"; { [ -z "$snapper_pid" ] || kill "$snapper_pid" 2>/dev/null || true; }; { [ -z "$checker_pid" ] || kill -9 "$checker_pid" 2>/dev/null || true; }; cluster_cleanup; [ -n "${KEEP:-}" ] && cp -r "$dir" /tmp/thrash-last; rm -rf "$dir"' EXIT

cluster_conf_local "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
mon_osd_beacon_grace = 4s
mon_osd_down_out_interval = 0
mon_osd_flap_backoff = 100ms
mon_osd_flap_backoff_max = 500ms"
osd_conf_local 256M h0 h1 h2
kill_one() { { kill -9 "${pid[$1]}"; wait "${pid[$1]}"; } 2>/dev/null || true; }
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2; do osd_start "$i"; done
for _ in $(seq 100); do [ "$(js "s['osd']['up']")" = 3 ] && break; sleep 0.2; done
if [ -n "$ec" ]; then
	cli pool create rbd --ec "$ec" --min-size "${ec%+*}" --pg-num 16 >/dev/null
else
	cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null
fi
cli volume create thr --size 12M >/dev/null
inode=$(cli --json volume info thr | python3 -c 'import json,sys; print(json.load(sys.stdin)["inode"])')

"$build/tests/fault/io_checker" -c "$dir/basalt.conf" --keyring "$dir/keyring" --pool rbd \
	--objects 96 --qd 12 --seconds "$((seconds + 3))" --drain 120 --inode "$inode" \
	>"$dir/checker.out" 2>&1 &
checker_pid=$!

# Snapshots under fire: one every second or two, at most 3 kept, a random
# one removed; a command the faults make fail is just counted.
snapper() {
	local n=0 made=0 removed=0 failed=0 snaps=()
	while [ ! -e "$dir/stop-snaps" ]; do
		sleep "$((RANDOM % 2)).$((RANDOM % 10))"
		if [ ${#snaps[@]} -lt 3 ] && cli --timeout 20 snap create "thr@s$n" >/dev/null 2>&1; then
			snaps+=("s$n") made=$((made + 1))
		elif [ ${#snaps[@]} -ge 3 ]; then
			local k=$((RANDOM % ${#snaps[@]}))
			if cli --timeout 20 snap rm "thr@${snaps[$k]}" >/dev/null 2>&1; then
				snaps=("${snaps[@]:0:$k}" "${snaps[@]:$((k + 1))}") removed=$((removed + 1))
			else
				failed=$((failed + 1))
			fi
		else
			failed=$((failed + 1))
		fi
		n=$((n + 1))
	done
	echo "$made $removed $failed ${snaps[*]}" >"$dir/snaps.out"
}
snapper 3>&- &
snapper_pid=$!

kills=0 leader_kills=0
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
	sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
	victim=osd.$((RANDOM % 3))
	kill_one "$victim"
	kills=$((kills + 1))
	if [ $((RANDOM % 4)) -eq 0 ]; then
		l=$(leader) || fail "no leader"
		kill_one "mon.$l"
		leader_kills=$((leader_kills + 1))
		sleep "0.$((RANDOM % 10))"
		mon_start "$l"
	fi
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	osd_start "${victim#osd.}"
done
echo "thrash: $kills OSD kills, $leader_kills monitor leader kills"
touch "$dir/stop-snaps"
wait "$snapper_pid" || true
snapper_pid=
read -r made removed failed left <"$dir/snaps.out" || true
echo "thrash: $made snapshots made, $removed removed, $failed commands failed under fire"
[ "$made" -gt 0 ] || fail "no snapshot could be made"

rc=0
wait "$checker_pid" || rc=$?
checker_pid=
cat "$dir/checker.out"
[ "$rc" -eq 0 ] || fail "io_checker found lost or stale data (exit $rc)"
for _ in $(seq 150); do
	[ "$(js "s['pgs'].get('active+clean', 0)")" = 16 ] && break
	sleep 0.2
done
[ "$(js "s['pgs'].get('active+clean', 0)")" = 16 ] || fail "PGs not clean: $(cli status)"
echo "thrash: all 16 PGs active+clean"
# Every snapshot goes (again, for one a fault cut short: the name may be
# gone already, the clones it left are still collected); then no clone
# of the volume is left on any OSD.
for snap in $(cli --json snap ls thr | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["snapshots"]))'); do
	cli snap rm "thr@$snap" >/dev/null || fail "snap rm thr@$snap after the thrashing"
done
cli snap rm thr@never-made >/dev/null 2>&1 || true # collects what a cut-short rm left
clones=$(cli object ls rbd | grep -c "@" || true)
[ "$clones" = 0 ] || fail "$clones clones left after every snapshot was removed: $(cli object ls rbd | grep @ | head)"
echo "thrash: every snapshot removed, no clone left"
for i in 0 1 2; do kill_one "osd.$i"; done
for i in 0 1 2; do
	"$build/basalt-osd" --fsck --device "$dir/osd.$i.img" >"$dir/fsck.$i" 2>&1 ||
		fail "fsck osd.$i: $(cat "$dir/fsck.$i")"
done
echo "thrash: fsck clean on every OSD"
echo PASS
