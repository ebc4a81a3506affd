#!/usr/bin/env bash
# Three real monitors on loopback. A stream of pool and volume creations
# from the CLI
# runs while the leader is killed with SIGKILL (and later restarted); every
# change the CLI saw acknowledged must be in the final map on all three, and
# none applied twice (one epoch per pool). Then a minority (two monitors
# frozen with SIGSTOP) must not commit, the frozen ones must catch up, and a
# cold restart of all three must keep the map. Stops exactly what it started.
#   mon_cluster.sh BUILD_DIR [COUNT]
set -euo pipefail
build=$(cd "${1:?usage: mon_cluster.sh BUILD_DIR [COUNT]}" && pwd)
count=${2:-${MON_TEST_COUNT:-1000}}
dir=$(mktemp -d /tmp/basalt-mon-test.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
cluster_conf_local
start() { mon_start "$1"; }
# Everything monitor $1 holds, one "pool NAME" or "volume NAME" per line.
pools_of() {
	{
		cli --mon "$1" --timeout 10 --json pool ls | python3 -c 'import json,sys; print("\n".join("pool " + p["name"] for p in json.load(sys.stdin)))'
		cli --mon "$1" --timeout 10 --json volume ls | python3 -c 'import json,sys; print("\n".join("volume " + v["name"] for v in json.load(sys.stdin)))'
	} | grep -v '^$' | sort
}

mon_mkfs_all a b c
for m in a b c; do start $m; done
l=$(leader) || fail "no leader elected"
echo "leader: mon.$l"

# 1. A stream of changes while the leader dies and comes back.
cli pool create base >/dev/null || fail "cannot create the first pool"
echo "pool base" >"$dir/acked"; : >"$dir/unknown"
killed=
for i in $(seq 1 "$count"); do
	if [ "$i" -eq $((count / 3)) ]; then
		killed=$(leader)
		kill -9 "${pid[mon.$killed]}"; wait "${pid[mon.$killed]}" 2>/dev/null || true
		echo "killed the leader mon.$killed after $((i - 1)) changes"
	fi
	if [ "$i" -eq $((2 * count / 3)) ]; then
		start "$killed"
		echo "restarted mon.$killed"
	fi
	# Pools and volumes alternate; every name is distinct, so each acked
	# change is one name in the final map and one epoch.
	if [ $((i % 2)) -eq 0 ]; then
		what=(volume create "v$i" --pool base --size 1G) name="volume v$i"
	else
		what=(pool create "p$i") name="pool p$i"
	fi
	if cli --timeout 20 "${what[@]}" >/dev/null 2>"$dir/err"; then
		echo "$name" >>"$dir/acked"
	else
		echo "$name" >>"$dir/unknown"
		echo "$name: $(cat "$dir/err")"
	fi
done
echo "acknowledged $(($(wc -l <"$dir/acked") - 1)) of $count (unknown outcome: $(wc -l <"$dir/unknown"))"

# All three converge on one map.
converge "$(wc -l <"$dir/acked")" a b c || fail "the monitors do not converge"
ea=$(epoch_of a)
for m in a b c; do pools_of $m >"$dir/pools.$m"; done
cmp -s "$dir/pools.a" "$dir/pools.b" && cmp -s "$dir/pools.b" "$dir/pools.c" || fail "maps differ"
missing=$(sort "$dir/acked" | comm -23 - "$dir/pools.a" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing acknowledged changes are missing"
npools=$(wc -l <"$dir/pools.a")
[ "$ea" -eq "$npools" ] || fail "epoch $ea but $npools pools and volumes: a change was applied twice or lost"
echo "all three at epoch $ea with $npools pools and volumes; every acknowledged change present, none twice"

# 2. A minority cannot commit; the frozen monitors catch up.
l=$(leader)
others=$(printf '%s\n' a b c | grep -v "^$l$" | head -1)
kill -STOP "${pid[mon.$l]}" "${pid[mon.$others]}"
alone=$(printf '%s\n' a b c | grep -v "^$l$" | grep -v "^$others$")
before=$(epoch_of "$alone")
if cli --timeout 3 pool create minority >/dev/null 2>&1; then fail "a minority committed"; fi
after=$(epoch_of "$alone")
[ "$before" = "$after" ] || fail "mon.$alone moved from epoch $before to $after without a majority"
echo "with mon.$l and mon.$others frozen, mon.$alone stayed at epoch $after: no commit"
kill -CONT "${pid[mon.$l]}" "${pid[mon.$others]}"
cli --timeout 20 pool create healed >/dev/null || fail "no commit after healing"
converge $((after + 1)) a b c || fail "the frozen monitors did not catch up"

for m in a b c; do pools_of $m >"$dir/pools.$m"; done
cmp -s "$dir/pools.a" "$dir/pools.b" && cmp -s "$dir/pools.b" "$dir/pools.c" || fail "no catch-up"
grep -qx "pool healed" "$dir/pools.a" || fail "the healed change is missing"
echo "healed: all three agree again ($(wc -l <"$dir/pools.a") pools)"

# 3. Cold restart of all three keeps the map.
epoch=$(epoch_of a)
for m in a b c; do kill -TERM "${pid[mon.$m]}"; done
for m in a b c; do wait "${pid[mon.$m]}" || fail "mon.$m did not stop cleanly"; done
for m in a b c; do start $m; done
leader >/dev/null || fail "no leader after a cold restart"
converge "$epoch" a b c || fail "the monitors did not come back to epoch $epoch"
[ "$(epoch_of a)" = "$epoch" ] || fail "epoch $epoch before the restart, $(epoch_of a) after"
pools_of a >"$dir/pools.after"
cmp -s "$dir/pools.a" "$dir/pools.after" || fail "the map changed across a cold restart"
cli --timeout 20 pool create after-restart >/dev/null || fail "no commit after a cold restart"
echo "cold restart: $(wc -l <"$dir/pools.after") pools and volumes kept"

# 4. Volume life cycle from the CLI: sizes, snapshots, clones, refusals.
vjson() { cli --json volume info "$1" | python3 -c "import json,sys; v=json.load(sys.stdin); print($2)"; }
refused() { # refused "TEXT" ARGS...
	local want=$1
	shift
	if cli "$@" >/dev/null 2>"$dir/err"; then fail "'$*' succeeded"; fi
	grep -qF "$want" "$dir/err" || fail "'$*': $(cat "$dir/err"), expected '$want'"
}
cli volume create gold --pool base --size 10G >/dev/null
cli volume snap create gold v1 >/dev/null
cli volume resize gold 20G >/dev/null
refused "snapshot 'v1' of 'gold' is not protected: protect it first" volume clone gold v1 vm-a
cli snap protect gold@v1 >/dev/null
cli volume clone gold v1 vm-a >/dev/null
[ "$(vjson vm-a 'v["size"], v["parent"]["volume"], v["parent"]["snapshot"], v["pool"]')" = "10737418240 gold v1 base" ] ||
	fail "clone: $(cli --json volume info vm-a)"
[ "$(vjson gold 'v["size"], [s["name"] for s in v["snapshots"]]')" = "21474836480 ['v1']" ] ||
	fail "gold: $(cli --json volume info gold)"
refused "snapshot 'v1' of 'gold' is protected: unprotect it first" volume snap rm gold v1
refused "snapshot 'v1' of 'gold' is the parent of clone 'vm-a'" snap unprotect gold@v1
refused "volume 'gold' has 1 snapshots: remove them first" volume rm gold
refused "volume create needs --size" volume create x --pool base
refused "pool 'nope' does not exist" volume create x --pool nope --size 1G
cli volume rename vm-a vm-b >/dev/null
# No OSD is up to free the blocks, so rm keeps the volume rather than
# leave blocks no name reaches (nbd_clients.sh removes them with OSDs).
refused "volume 'vm-b' is kept; run the command again to free the rest" volume rm vm-b
vjson vm-b 'v["name"]' >/dev/null || fail "vm-b went away though rm failed"
refused "volume 'vm-a' does not exist" volume info vm-a
echo "volumes: create, snapshot, resize, clone, rename; rm with no OSD up keeps the volume; refusals say why"

# 5. A monitor whose address another process holds says so and exits
# (after waiting 5 s for it: a process killed a moment ago may still
# hold its port while the kernel closes its io_uring).
kill "${pid[mon.c]}"; wait "${pid[mon.c]}" 2>/dev/null || true
port=$(sed -n '/^\[mon.c\]/,/^\[/s/^addr = .*:\([0-9]*\)$/\1/p' "$dir/basalt.conf")
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for _ in range(100):  # mon.c may still hold it a moment
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.1)
s.listen()
print("holding", flush=True)
time.sleep(60)' "$port" >"$dir/holder" &
holder=$!
for _ in $(seq 100); do grep -q holding "$dir/holder" && break; sleep 0.1; done
grep -q holding "$dir/holder" || fail "could not take mon.c's port $port for the test"
rc=0
timeout 30 "$build/basalt-mon" --id c -c "$dir/basalt.conf" --log-file "$dir/mon.c.busy.log" 2>"$dir/err" || rc=$?
{ kill "$holder"; wait "$holder"; } 2>/dev/null || true
[ "$rc" = 1 ] || fail "mon.c on a busy port exited $rc: $(cat "$dir/err")"
grep -q "cannot listen on 127.0.0.1:$port: Address already in use" "$dir/err" || fail "mon.c on a busy port: $(cat "$dir/err")"
grep -q "127.0.0.1:$port is in use; trying again" "$dir/mon.c.busy.log" || fail "mon.c did not say it waits for its port"
echo "a monitor whose port is taken waits 5 s for it, then says why it cannot start"
echo PASS
