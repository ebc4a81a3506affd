#!/usr/bin/env bash
# scripts/cluster.sh as a user runs it: up starts 3 monitors and 3 OSDs and
# records their PIDs; up again starts nothing twice and restarts only what
# died; down stops exactly the recorded PIDs; up after down brings the
# same cluster back (its map kept); bad options are refused.
#   cluster_script.sh   (run from anywhere; uses the repository's build/)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-cluster-test.XXXXXX)
cs() { "$repo/scripts/cluster.sh" "$@" --dir "$dir"; }
cleanup() {
	[ -f "$dir/pids" ] && awk '{print $2}' "$dir/pids" | while read -r p; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 5 "$dir"/*.log >&2 2>/dev/null || true; exit 1; }
running() { awk '{print $2}' "$dir/pids" | while read -r p; do kill -0 "$p" 2>/dev/null && echo "$p"; done | wc -l; }

cs up >/dev/null || fail "up"
[ "$(wc -l <"$dir/pids")" -eq 6 ] && [ "$(running)" -eq 6 ] || fail "expected 6 running daemons: $(cat "$dir/pids")"
before=$(sort "$dir/pids")
cs up >/dev/null || fail "second up"
[ "$(sort "$dir/pids")" = "$before" ] || fail "a second up started daemons again"
victim=$(awk '$1 == "osd.1" {print $2}' "$dir/pids")
kill -9 "$victim"
while kill -0 "$victim" 2>/dev/null; do sleep 0.05; done
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
pids=$(awk '{print $2}' "$dir/pids")
cs down >/dev/null || fail "down"
for p in $pids; do ! kill -0 "$p" 2>/dev/null || fail "pid $p still runs after down"; done
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
