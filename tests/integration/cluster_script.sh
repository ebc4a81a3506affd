#!/usr/bin/env bash
# scripts/cluster.sh as a user runs it: up starts 3 monitors and 3 OSDs and
# records their PIDs; up again starts nothing twice and restarts only what
# died; stop NAME / start NAME stop and start one OSD or monitor (start
# waits until it serves; unknown names refused); a zombie (a killed,
# unreaped daemon, on which kill -0 succeeds) counts as stopped; down
# stops exactly the recorded PIDs; up after down brings the same cluster
# back (its map kept); bad options are refused.
#   cluster_script.sh   (run from anywhere; uses the repository's build/)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-cluster-test.XXXXXX)
cs() { "$repo/scripts/cluster.sh" "$@" --dir "$dir"; }
zparent=
cleanup() {
	[ -n "$zparent" ] && { kill "$zparent" 2>/dev/null || true; }
	[ -f "$dir/pids" ] && awk '{print $2}' "$dir/pids" | while read -r p; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 5 "$dir"/*.log >&2 2>/dev/null || true; exit 1; }
# runs PID: a process that is not a zombie (a daemon killed but not yet
# reaped by init is a zombie for a while, and kill -0 succeeds on it).
runs() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; }
running() { awk '{print $2}' "$dir/pids" | while read -r p; do runs "$p" && echo "$p"; done | wc -l; }

cs up >/dev/null || fail "up"
[ "$(wc -l <"$dir/pids")" -eq 6 ] && [ "$(running)" -eq 6 ] || fail "expected 6 running daemons: $(cat "$dir/pids")"
before=$(sort "$dir/pids")
cs up >/dev/null || fail "second up"
[ "$(sort "$dir/pids")" = "$before" ] || fail "a second up started daemons again"
victim=$(awk '$1 == "osd.1" {print $2}' "$dir/pids")
kill -9 "$victim"
while runs "$victim"; do sleep 0.05; done
cs up >/dev/null || fail "up after a daemon died"
[ "$(running)" -eq 6 ] || fail "osd.1 was not restarted"
[ "$(awk '$1 == "osd.1" {print $2}' "$dir/pids")" != "$victim" ] || fail "osd.1 has its old pid"
[ "$(grep -v '^osd.1 ' "$dir/pids" | sort)" = "$(echo "$before" | grep -v '^osd.1 ')" ] ||
	fail "daemons other than osd.1 were restarted"
echo "up: 6 daemons; again: nothing doubled; a killed OSD restarted alone"

"$repo/build/basalt" -c "$dir/basalt.conf" pool create kept >/dev/null || fail "pool create"
# (Into a file first: grep -q stops reading at its match, and the rest of
# the output would then die of SIGPIPE, which pipefail reports.)
cs status >"$dir/status" || fail "status failed"
grep -q "osd.2 running" "$dir/status" || fail "status: $(cat "$dir/status")"
# --- one daemon at a time ---
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$dir/pids"; }
old=$(pid_of osd.1)
cs stop osd.1 >"$dir/out" || fail "stop osd.1: $(cat "$dir/out")"
grep -q "osd.1 stopped (pid $old)" "$dir/out" || fail "stop osd.1 said: $(cat "$dir/out")"
! runs "$old" || fail "osd.1 still runs after stop"
[ -z "$(pid_of osd.1)" ] || fail "osd.1 left in pids: $(cat "$dir/pids")"
cs status >"$dir/status" || fail "status failed"
grep -q "osd.1 stopped" "$dir/status" && grep -q "osd.0 running" "$dir/status" ||
	fail "status after stop: $(cat "$dir/status")"
cs start osd.1 >"$dir/out" || fail "start osd.1: $(cat "$dir/out")"
grep -q "osd.1 started (pid $(pid_of osd.1))" "$dir/out" || fail "start osd.1 said: $(cat "$dir/out")"
"$repo/build/basalt" -c "$dir/basalt.conf" --json osd ls | python3 -c \
	"import json,sys; sys.exit(0 if [o['up'] for o in json.load(sys.stdin) if o['id']==1]==[True] else 1)" ||
	fail "osd.1 not up after start returned"
cs start osd.1 >"$dir/out" || fail "start of a running osd.1"
grep -q "osd.1 is already running" "$dir/out" || fail "start osd.1 again: $(cat "$dir/out")"
cs stop mon.b >/dev/null || fail "stop mon.b"
cs start mon.b >"$dir/out" || fail "start mon.b: $(cat "$dir/out")"
[ "$(running)" -eq 6 ] || fail "expected 6 running daemons: $(cat "$dir/pids")"
if cs start osd.9 >/dev/null 2>"$dir/err"; then fail "start osd.9 accepted"; fi
grep -q "no daemon osd.9 in" "$dir/err" || fail "start osd.9: $(cat "$dir/err")"
if "$repo/scripts/cluster.sh" stop --dir "$dir" >/dev/null 2>"$dir/err"; then fail "stop without a name"; fi
grep -q "stop takes a daemon's name" "$dir/err" || fail "stop without a name: $(cat "$dir/err")"
if "$repo/scripts/cluster.sh" start osd.0 --dir "$dir/none" >/dev/null 2>"$dir/err"; then fail "start without a cluster"; fi
grep -q "no cluster in $dir/none" "$dir/err" || fail "start without a cluster: $(cat "$dir/err")"
# A daemon that cannot start (its store is gone) is reported, not waited for.
cs stop osd.2 >/dev/null || fail "stop osd.2"
mv "$dir/osd.2.img" "$dir/osd.2.away"
if cs start osd.2 >/dev/null 2>"$dir/err"; then fail "osd.2 started without its store"; fi
grep -q "osd.2 exited; see $dir/osd.2.log" "$dir/err" || fail "start osd.2 without its store: $(cat "$dir/err")"
mv "$dir/osd.2.away" "$dir/osd.2.img"
cs start osd.2 >/dev/null || fail "start osd.2 with its store back"
echo "stop/start NAME: osd.1 and mon.b stopped and started alone; unknown and missing names, a missing cluster and a daemon that exits refused"

# --- a zombie is not a running daemon ---
# osd.2 killed and not reaped: a parent that never waits holds its zombie.
cs stop osd.2 >/dev/null || fail "stop osd.2"
python3 -c 'import os, sys, time
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], [sys.argv[1], "--help"])
print(pid, flush=True)
time.sleep(120)' "$repo/build/basalt-osd" >"$dir/zombie" 2>/dev/null &
zparent=$!
for _ in $(seq 50); do [ -s "$dir/zombie" ] && break; sleep 0.1; done
zpid=$(cat "$dir/zombie")
for _ in $(seq 50); do [ "$(awk '{print $3}' "/proc/$zpid/stat" 2>/dev/null)" = Z ] && break; sleep 0.1; done
[ "$(awk '{print $3}' "/proc/$zpid/stat")" = Z ] && kill -0 "$zpid" || fail "no zombie to test with"
echo "osd.2 $zpid" >>"$dir/pids"
cs status >"$dir/status" || fail "status failed"
grep -q "osd.2 stopped" "$dir/status" || fail "a zombie osd.2 counted as running: $(cat "$dir/status")"
cs start osd.2 >"$dir/out" || fail "start osd.2 over its zombie: $(cat "$dir/out")"
[ "$(pid_of osd.2)" != "$zpid" ] && grep -q "osd.2 started" "$dir/out" ||
	fail "start osd.2 took the zombie for it: $(cat "$dir/out")"
kill "$zparent"
wait "$zparent" 2>/dev/null || true
zparent=
echo "zombie: a killed, unreaped osd.2 is stopped to status, and start starts a real one"

pids=$(awk '{print $2}' "$dir/pids")
cs down >/dev/null || fail "down"
for p in $pids; do ! runs "$p" || fail "pid $p still runs after down"; done
[ ! -f "$dir/pids" ] || fail "pids left behind"
cs up >/dev/null || fail "up after down"
"$repo/build/basalt" -c "$dir/basalt.conf" pool ls | grep -q kept || fail "the map was not kept across down/up"
echo "down stopped exactly the recorded daemons; up brought the same cluster back"

if "$repo/scripts/cluster.sh" up --mons 2 --dir "$dir" >/dev/null 2>"$dir/err"; then fail "--mons 2 accepted"; fi
grep -q "must be 1, 3 or 5" "$dir/err" || fail "no reason for --mons 2: $(cat "$dir/err")"
if "$repo/scripts/cluster.sh" sideways >/dev/null 2>"$dir/err"; then fail "unknown command accepted"; fi
cs down --purge >/dev/null
[ ! -d "$dir" ] || fail "--purge left $dir"
echo PASS
