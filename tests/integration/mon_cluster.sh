#!/usr/bin/env bash
# Three real monitors on loopback. A stream of pool creations from the CLI
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
declare -A pid
cleanup() {
	for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 5 "$dir"/*.log >&2 || true; exit 1; }

ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r pa pb pc <<<"$ports"
key=$(head -c 32 /dev/urandom | base64)
printf '[mon.]\nkey = %s\n[client.admin]\nkey = %s\n' "$key" "$key" >"$dir/keyring"
cat >"$dir/basalt.conf" <<CONF
[global]
fsid = $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mon_tick = 20ms
mon_election_timeout = 300ms
mon_heartbeat = 60ms
[mon.a]
addr = 127.0.0.1:$pa
data = $dir/mon.a
[mon.b]
addr = 127.0.0.1:$pb
data = $dir/mon.b
[mon.c]
addr = 127.0.0.1:$pc
data = $dir/mon.c
CONF
cli() { "$build/basalt" -c "$dir/basalt.conf" "$@"; }
start() { "$build/basalt-mon" --id "$1" -c "$dir/basalt.conf" --log-file "$dir/$1.log" & pid[$1]=$!; }
# The leader's name, once there is one (up to 10 s).
leader() {
	local l
	for _ in $(seq 100); do
		l=$(cli --timeout 10 --json status 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["mon"]["leader"])') || true
		[ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.1
	done
	return 1
}
# Waits until all three monitors have applied epoch $1 or more, and agree.
converge() {
	for _ in $(seq 200); do
		ea=$(epoch_of a) eb=$(epoch_of b) ec=$(epoch_of c)
		[ "$ea" = "$eb" ] && [ "$eb" = "$ec" ] && [ "$ea" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
pools_of() { cli --mon "$1" --timeout 10 --json pool ls | python3 -c 'import json,sys; print("\n".join(sorted(p["name"] for p in json.load(sys.stdin))))'; }
epoch_of() { cli --mon "$1" --timeout 10 --json mon ls | python3 -c "import json,sys; print([m.get('epoch', -1) for m in json.load(sys.stdin) if m['name']=='$1'][0])"; }

for m in a b c; do "$build/basalt-mon" --mkfs --id $m -c "$dir/basalt.conf"; done
for m in a b c; do start $m; done
l=$(leader) || fail "no leader elected"
echo "leader: mon.$l"

# 1. A stream of changes while the leader dies and comes back.
: >"$dir/acked"; : >"$dir/unknown"
killed=
for i in $(seq 1 "$count"); do
	if [ "$i" -eq $((count / 3)) ]; then
		killed=$(leader)
		kill -9 "${pid[$killed]}"; wait "${pid[$killed]}" 2>/dev/null || true
		echo "killed the leader mon.$killed after $((i - 1)) changes"
	fi
	if [ "$i" -eq $((2 * count / 3)) ]; then
		start "$killed"
		echo "restarted mon.$killed"
	fi
	if cli --timeout 20 pool create "p$i" >/dev/null 2>"$dir/err"; then
		echo "p$i" >>"$dir/acked"
	else
		echo "p$i" >>"$dir/unknown"
		echo "p$i: $(cat "$dir/err")"
	fi
done
echo "acknowledged $(wc -l <"$dir/acked") of $count (unknown outcome: $(wc -l <"$dir/unknown"))"

# All three converge on one map.
converge "$(wc -l <"$dir/acked")" || fail "epochs differ: $ea $eb $ec"
for m in a b c; do pools_of $m >"$dir/pools.$m"; done
cmp -s "$dir/pools.a" "$dir/pools.b" && cmp -s "$dir/pools.b" "$dir/pools.c" || fail "maps differ"
missing=$(sort "$dir/acked" | comm -23 - "$dir/pools.a" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing acknowledged changes are missing"
npools=$(wc -l <"$dir/pools.a")
[ "$ea" -eq "$npools" ] || fail "epoch $ea but $npools pools: a change was applied twice or lost"
echo "all three at epoch $ea with $npools pools; every acknowledged change present, none twice"

# 2. A minority cannot commit; the frozen monitors catch up.
l=$(leader)
others=$(printf '%s\n' a b c | grep -v "^$l$" | head -1)
kill -STOP "${pid[$l]}" "${pid[$others]}"
alone=$(printf '%s\n' a b c | grep -v "^$l$" | grep -v "^$others$")
before=$(epoch_of "$alone")
if cli --timeout 3 pool create minority >/dev/null 2>&1; then fail "a minority committed"; fi
after=$(epoch_of "$alone")
[ "$before" = "$after" ] || fail "mon.$alone moved from epoch $before to $after without a majority"
echo "with mon.$l and mon.$others frozen, mon.$alone stayed at epoch $after: no commit"
kill -CONT "${pid[$l]}" "${pid[$others]}"
cli --timeout 20 pool create healed >/dev/null || fail "no commit after healing"
converge $((after + 1)) || fail "the frozen monitors did not catch up"

for m in a b c; do pools_of $m >"$dir/pools.$m"; done
cmp -s "$dir/pools.a" "$dir/pools.b" && cmp -s "$dir/pools.b" "$dir/pools.c" || fail "no catch-up"
grep -qx healed "$dir/pools.a" || fail "the healed change is missing"
echo "healed: all three agree again ($(wc -l <"$dir/pools.a") pools)"

# 3. Cold restart of all three keeps the map.
for m in a b c; do kill -TERM "${pid[$m]}"; done
for m in a b c; do wait "${pid[$m]}" || fail "mon.$m did not stop cleanly"; done
epoch=$(epoch_of a)
for m in a b c; do start $m; done
leader >/dev/null || fail "no leader after a cold restart"
converge "$epoch" || fail "the monitors did not come back to epoch $epoch"
pools_of a >"$dir/pools.after"
cmp -s "$dir/pools.a" "$dir/pools.after" || fail "the map changed across a cold restart"
cli --timeout 20 pool create after-restart >/dev/null || fail "no commit after a cold restart"
echo "cold restart: $(wc -l <"$dir/pools.after") pools kept"
echo PASS
