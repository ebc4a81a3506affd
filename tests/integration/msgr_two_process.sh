#!/usr/bin/env bash
# Two messenger processes on loopback: a driver sends 100,000 messages with
# data segments to an echo server, which is killed with SIGKILL and
# restarted mid-stream; every message must come back intact. Then every
# malformed frame is sent on its own connection: each must be closed while
# another client keeps being served. Stops exactly the processes it started.
set -euo pipefail
tool=${1:?usage: msgr_two_process.sh PATH/TO/msgr_tool}
count=${MSGR_TEST_COUNT:-100000}
dir=$(mktemp -d /tmp/basalt-msgr-test.XXXXXX)
server_pid= driver_pid=

cleanup() {
	for pid in $server_pid $driver_pid; do
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; tail -n 20 "$dir"/*.log >&2 || true; exit 1; }

key=$(head -c 32 /dev/urandom | base64)
printf '[client.admin]\nkey = %s\n[osd.1]\nkey = %s\n' "$key" "$key" >"$dir/keyring"

start_server() { # PORT
	"$tool" serve --port "$1" --keyring "$dir/keyring" >"$dir/server.out" 2>>"$dir/server.log" &
	server_pid=$!
	for _ in $(seq 100); do
		grep -q '^listening' "$dir/server.out" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "server did not start"
}

start_server 0
port=$(awk '/^listening/ {print $2}' "$dir/server.out")
echo "server pid $server_pid on port $port"

"$tool" drive --port "$port" --keyring "$dir/keyring" --count "$count" \
	>"$dir/driver.out" 2>"$dir/driver.log" &
driver_pid=$!

# Kill the server once a third of the stream has been acknowledged.
for _ in $(seq 600); do
	acked=$(awk '/^acked/ {n=$2} END {print n+0}' "$dir/driver.out")
	[ "$acked" -ge $((count / 3)) ] && break
	kill -0 "$driver_pid" 2>/dev/null || break
	sleep 0.05
done
echo "killing server (pid $server_pid) after $acked acknowledged"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
sleep 0.3
start_server "$port"
echo "server restarted as pid $server_pid"

for _ in $(seq 1200); do
	kill -0 "$driver_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$driver_pid" 2>/dev/null && fail "driver did not finish in time"
rc=0
wait "$driver_pid" || rc=$?
driver_pid=
cat "$dir/driver.out" | tail -n 1
[ "$rc" -eq 0 ] || fail "driver exited $rc"
grep -q "acked=$count of $count" "$dir/driver.out" || fail "not every message was echoed"
grep -q 'connection down' "$dir/driver.log" || fail "the driver never saw the server die"

"$tool" badframes --port "$port" --keyring "$dir/keyring" | tee "$dir/bad.out" || fail "malformed frames"

# A client with the wrong secret (its HELLO names a key id the server does
# not hold) and a client the server does not know are refused by the
# server. Neither is served, and both failures are logged.
wrong_client() { # NAME LOG
	printf '[%s]\nkey = %s\n' "$1" "$(head -c 32 /dev/urandom | base64)" >"$dir/wrong"
	"$tool" drive --port "$port" --keyring "$dir/wrong" --name "$1" --count 1 \
		>"$dir/wrong.out" 2>"$2" &
	driver_pid=$!
	sleep 1.5
	kill -TERM "$driver_pid"
	wait "$driver_pid" && fail "$1 with a wrong secret was served"
	driver_pid=
	grep -q 'acked=0 of 1' "$dir/wrong.out" || fail "$1 got an answer"
}
wrong_client client.admin "$dir/wrong-secret.log"
grep -q 'the peer refused our key' "$dir/wrong-secret.log" || fail "client did not log the refusal"
wrong_client client.evil "$dir/wrong-entity.log"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited non-zero"
server_pid=
tail -n 1 "$dir/server.out"
bad=$(sed -n 's/.*bad_frames=\([0-9]*\).*/\1/p' "$dir/server.out")
auth=$(sed -n 's/.*auth_failures=\([0-9]*\).*/\1/p' "$dir/server.out")
# The truncated payload ends in EOF, not a bad frame: 11 of 12 cases.
[ "$bad" -ge 11 ] || fail "server counted $bad bad frames"
[ "$auth" -ge 1 ] || fail "server counted no authentication failure"
n=$(grep -c 'bad frame on connection' "$dir/server.log" || true)
[ "$n" -ge 9 ] || fail "only $n bad frames were logged"
grep -q 'authentication failed' "$dir/server.log" || fail "auth failure not logged"
echo "PASS"
