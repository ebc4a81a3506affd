#!/usr/bin/env bash
# The cluster under fire: 3 monitors and 3 OSDs on loopback, a pool of
# size 3 / min_size 2. io_checker writes, overwrites, deletes and reads
# back objects (checking every read against what was acknowledged) while
# this script kills -9 a random OSD every few seconds and restarts it,
# and now and then kills the monitor leader too. Pass: io_checker saw no
# lost or stale acknowledged write, every PG is active+clean once the
# thrashing stops, and every OSD's store passes fsck.
#
#   thrash.sh BUILD_DIR [--seconds S] [--seed N]    (default 40 s; longer by flag)
set -euo pipefail
build=$(cd "${1:?usage: thrash.sh BUILD_DIR [--seconds S] [--seed N]}" && pwd)
shift
seconds=40 seed=$RANDOM
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	*) echo "thrash.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
RANDOM=$seed
echo "thrash: $seconds s, seed $seed"
dir=$(mktemp -d /tmp/basalt-thrash.XXXXXX)
. "$(dirname "$0")/../integration/cluster_lib.sh"
checker_pid=
trap '[ -n "$checker_pid" ] && kill -9 "$checker_pid" 2>/dev/null; cluster_cleanup; [ -n "${KEEP:-}" ] && cp -r "$dir" /tmp/thrash-last; rm -rf "$dir"' EXIT

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
cli pool create rbd --size 3 --min-size 2 --pg-num 16 >/dev/null

"$build/tests/fault/io_checker" -c "$dir/basalt.conf" --keyring "$dir/keyring" --pool rbd \
	--objects 96 --qd 12 --seconds "$((seconds + 3))" --drain 120 >"$dir/checker.out" 2>&1 &
checker_pid=$!

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
for i in 0 1 2; do kill_one "osd.$i"; done
for i in 0 1 2; do
	"$build/basalt-osd" --fsck --device "$dir/osd.$i.img" >"$dir/fsck.$i" 2>&1 ||
		fail "fsck osd.$i: $(cat "$dir/fsck.$i")"
done
echo "thrash: fsck clean on every OSD"
echo PASS
