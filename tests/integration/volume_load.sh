#!/usr/bin/env bash
# bench/volume_load, the benchmark's native-client load generator, on a
# local cluster (3 monitors, 3 OSDs, mon_lock_lease = 3s):
#  - bad options: usage and exit 2; a volume that does not exist: exit 1
#    naming it;
#  - each job kind runs and writes fio-shaped JSON with operations;
#  - a writer holds the volume's lock while it runs (volume info names its
#    PID) and gives it back when done; a second writer meanwhile is
#    refused (exit 1, naming the holder) after its retries; a reader runs
#    beside the writer without the lock.
#   volume_load.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: volume_load.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-volume-load.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
vl=("$build/bench/volume_load" -c "$dir/basalt.conf" --keyring "$dir/keyring")

rc=0
"${vl[@]}" --volume vm --rw sideways --bs 4K 2>"$dir/err" || rc=$?
[ "$rc" = 2 ] && grep -q '^usage: volume_load' "$dir/err" || fail "bad --rw: rc $rc, $(cat "$dir/err")"
rc=0
"${vl[@]}" --volume vm --rw read --bs 1000 2>"$dir/err" || rc=$?
[ "$rc" = 2 ] || fail "--bs 1000 (not a multiple of 512) accepted: rc $rc"
rc=0
"${vl[@]}" --volume vm --rw read --bs 4K --iodepth 0 2>"$dir/err" || rc=$?
[ "$rc" = 2 ] || fail "--iodepth 0 accepted: rc $rc"

cluster_up_local 1G "mon_lock_lease = 3s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

rc=0
"${vl[@]}" --volume nope --rw read --bs 4K --runtime 1 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'cannot open volume nope' "$dir/err" || fail "missing volume: rc $rc, $(cat "$dir/err")"

check_json() { # check_json FILE RW: fio's shape, operations done, no error
	python3 - "$1" "$2" <<'PY' || fail "$1: $(cat "$1")"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
side = j["write" if "write" in sys.argv[2] else "read"]
assert j["rw"] == sys.argv[2] and j["error"] == 0, j
assert side["total_ios"] > 0 and side["iops"] > 0 and side["bw_bytes"] > 0, j
assert side["clat_ns"]["mean"] > 0 and side["clat_ns"]["percentile"]["99.000000"] > 0, j
assert j["job_runtime"] >= 900, j
PY
}
for rw in write randwrite read randread; do
	"${vl[@]}" --volume vm --rw $rw --bs 64K --iodepth 4 --runtime 1 --ramp_time 0 \
		--output "$dir/$rw.json" || fail "$rw job failed"
	check_json "$dir/$rw.json" $rw
done
lock() { cli --json volume info vm | python3 -c 'import json, sys; l = json.load(sys.stdin)["lock"]; print(l["owner"] if l else "none")'; }
[ "$(lock)" = none ] || fail "the lock was not given back: $(lock)"

# A writer for 14 s; meanwhile a second writer and a reader.
"${vl[@]}" --volume vm --rw randwrite --bs 4K --iodepth 2 --runtime 14 --ramp_time 0 \
	--output "$dir/a.json" 2>"$dir/a.err" &
pid[writer]=$!
for _ in $(seq 50); do [ "$(lock)" != none ] && break; sleep 0.2; done
[[ "$(lock)" == *"pid ${pid[writer]}"* ]] || fail "volume info does not name the writer: $(lock)"
rc=0
"${vl[@]}" --volume vm --rw write --bs 4K --runtime 1 2>"$dir/b.err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot lock volume vm: .*pid ${pid[writer]}" "$dir/b.err" ||
	fail "a second writer: rc $rc, $(cat "$dir/b.err")"
"${vl[@]}" --volume vm --rw randread --bs 4K --runtime 1 --ramp_time 0 --output "$dir/r.json" ||
	fail "a reader beside the writer failed"
check_json "$dir/r.json" randread
wait "${pid[writer]}" || fail "the writer failed: $(cat "$dir/a.err")"
unset 'pid[writer]'
check_json "$dir/a.json" randwrite
[ "$(lock)" = none ] || fail "the writer did not give its lock back: $(lock)"
echo "PASS volume_load: bad options, missing volume, 4 job kinds, the lock held, refused to a second writer, given back"
