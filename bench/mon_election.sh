#!/usr/bin/env bash
# Election time after losing the leader: three monitors on loopback with
# the given timing; the leader is killed with SIGKILL and the time until
# another monitor is elected (from the survivor's log) and until the CLI
# sees it (`basalt mon ls` against a survivor, which includes starting the
# CLI and asking the dead monitor too) is measured, 20 times; the killed one
# is restarted between rounds. Prints each time and the medians.
#   bench/mon_election.sh [--rounds 20] [--election-timeout 1s] [--tick 50ms]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20 election=1s tick=50ms heartbeat=100ms
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--election-timeout) election=$2; shift 2 ;;
	--tick) tick=$2; shift 2 ;;
	--heartbeat) heartbeat=$2; shift 2 ;;
	*) echo "usage: bench/mon_election.sh [--rounds N] [--election-timeout D] [--tick D] [--heartbeat D]" >&2; exit 2 ;;
	esac
done
cmake -S . -B build -G Ninja >/dev/null && ninja -C build basalt basalt-mon >/dev/null
build=$PWD/build
dir=$(mktemp -d /tmp/basalt-election.XXXXXX)
declare -A pid
cleanup() { for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] && cp -r "$dir" /tmp/election-last; rm -rf "$dir"; }
trap cleanup EXIT
read -r pa pb pc < <("$(dirname "$0")/../scripts/free-ports" 3)
key=$(head -c 32 /dev/urandom | base64)
printf '[mon.]\nkey = %s\n[client.admin]\nkey = %s\n' "$key" "$key" >"$dir/keyring"
cat >"$dir/basalt.conf" <<CONF
[global]
fsid = $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mon_tick = $tick
mon_election_timeout = $election
mon_heartbeat = $heartbeat
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
cli() { "$build/basalt" -c "$dir/basalt.conf" --timeout 1 "$@" 2>/dev/null; }
start() { "$build/basalt-mon" --id "$1" -c "$dir/basalt.conf" --log-file "$dir/$1.log" & pid[$1]=$!; }
leader_at() { # what monitor $1 says the leader is
	cli --mon "$1" --json mon ls | python3 -c "import json,sys; print([m.get('leader','') for m in json.load(sys.stdin) if m['name']=='$1'][0])" 2>/dev/null || true
}
for m in a b c; do "$build/basalt-mon" --mkfs --id $m -c "$dir/basalt.conf"; start $m; done
times=() elections=()
for r in $(seq "$rounds"); do
	old=
	while [ -z "$old" ]; do old=$(leader_at a); sleep 0.05; done
	kill -9 "${pid[$old]}"
	t0=$(date +%s%N)
	survivor=$(printf '%s\n' a b c | grep -v "^$old$" | head -1)
	while :; do
		now=$(leader_at "$survivor")
		[ -n "$now" ] && [ "$now" != "$old" ] && break
	done
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	times+=("$ms")
	# When the survivor itself learned the new leader, from its log.
	stamp=$(grep "leader is now $now " "$dir/$survivor.log" | tail -1 | cut -d' ' -f1)
	elected=$(( ($(date -d "$stamp" +%s%N) - t0) / 1000000 ))
	elections+=("$elected")
	echo "round $r: leader mon.$old killed, mon.$now elected after $elected ms, seen by the CLI after $ms ms"
	wait "${pid[$old]}" 2>/dev/null || true
	start "$old"
	sleep 0.5
done
summary() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %s ms (min %s, max %s)", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR]}'; }
echo "election timeout $election (tick $tick, heartbeat $heartbeat), $rounds rounds:"
echo "  elected:          $(summary "${elections[@]}")"
echo "  seen by the CLI:  $(summary "${times[@]}")"
