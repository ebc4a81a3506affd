#!/usr/bin/env bash
# Readiness for systemd (Type=notify units) without systemd: the daemons of
# a one-monitor cluster are started with NOTIFY_SOCKET naming a socket of
# notify_recv.py, which freezes each daemon the moment it says READY=1; the
# test then checks that what "ready" promises already held:
#  - basalt-osd started before any monitor runs listens but says nothing;
#    it is ready once the monitors accepted its boot (status: osd up);
#  - basalt-mon is ready listening (its port accepts), and its log on a
#    journald stream (JOURNAL_STREAM) has syslog priorities, no timestamps;
#  - basalt-nbd is ready listening, basalt-fuse once mounted;
#  - a NOTIFY_SOCKET nobody listens on is a warning, and the daemon serves;
#  - SIGTERM: each says STOPPING=1.
#   notify.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: notify.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-notify.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mnt=$dir/mnt
sock=$dir/notify.sock
events=$dir/notify.events
cleanup() {
	for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	fusermount3 -u -z "$mnt" 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT

# ready_of PID SECONDS: waits for PID's READY=1 (it is then frozen) and
# prints its line; fails if it does not come.
ready_of() {
	for _ in $(seq $(($2 * 10))); do
		grep "^$1 .*READY=1" "$events" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no READY=1 from pid $1 within $2 s: $(cat "$events" 2>/dev/null)"
}
# accepts PORT: something listens on 127.0.0.1:PORT (a frozen process's
# socket still completes the TCP handshake from its backlog).
accepts() {
	python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3).close()" "$1"
}

read -r pmon pnbd pnbd2 < <(free_ports 3)
cluster_conf "a=127.0.0.1:$pmon"
osd_conf_local 256M h0
posd=$(sed -n 's/^addr = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/basalt.conf" | tail -1)
mon_mkfs_all a
python3 "$(dirname "$0")/notify_recv.py" "$sock" "$events" &
pid[recv]=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "notify_recv.py did not bind $sock"

# --- basalt-osd before the monitors: listening is not ready ------------------
NOTIFY_SOCKET=$sock "$build/basalt-osd" --id 0 -c "$dir/basalt.conf" --log-file "$dir/osd.0.log" &
pid[osd.0]=$!
for _ in $(seq 100); do grep -q "osd.0 started" "$dir/osd.0.log" 2>/dev/null && break; sleep 0.1; done
accepts "$posd" || fail "osd.0 does not listen"
sleep 2
grep -q "^${pid[osd.0]} " "$events" 2>/dev/null &&
	fail "osd.0 said something before any monitor ran: $(cat "$events")"

# --- basalt-mon: ready listening; journald-style log on its stderr -----------
touch "$dir/mon.a.stderr"
stream=$(stat -c '%d:%i' "$dir/mon.a.stderr")
NOTIFY_SOCKET=$sock JOURNAL_STREAM=$stream "$build/basalt-mon" --id a -c "$dir/basalt.conf" \
	2>>"$dir/mon.a.stderr" &
pid[mon.a]=$!
line=$(ready_of "${pid[mon.a]}" 20)
[[ $line == *"STATUS=mon.a listening"* ]] || fail "mon.a's READY has no status: $line"
accepts "$pmon" || fail "mon.a said READY=1 before listening on $pmon"
kill -CONT "${pid[mon.a]}"
grep -q '^<6>mon.a info ' "$dir/mon.a.stderr" || fail "mon.a's journal lines lack <6>: $(head -3 "$dir/mon.a.stderr")"
grep -Eq '^[0-9]{4}-[0-9]{2}-' "$dir/mon.a.stderr" &&
	fail "mon.a timestamps lines on a journal stream: $(head -3 "$dir/mon.a.stderr")"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.* osd.0 info ' "$dir/osd.0.log" ||
	fail "osd.0's log file lines have no timestamp: $(head -3 "$dir/osd.0.log")"

# --- basalt-osd: ready once the monitors accepted its boot -------------------
line=$(ready_of "${pid[osd.0]}" 30)
[[ $line == *"STATUS=osd.0 up in map epoch"* ]] || fail "osd.0's READY has no status: $line"
[ "$(js "s['osd']['up']")" = 1 ] || fail "osd.0 said READY=1 before the map had it up: $(cli status)"
kill -CONT "${pid[osd.0]}"
echo "mon.a and osd.0 ready as they should be"

cli pool create rbd --size 1 --pg-num 4 >/dev/null
cli volume create v --size 16M >/dev/null
wait_for "s['pgs'].get('active+clean')==4" 30 "PGs active+clean"

# --- basalt-nbd: ready listening ---------------------------------------------
NOTIFY_SOCKET=$sock "$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd.log" \
	--listen "127.0.0.1:$pnbd" &
pid[nbd]=$!
line=$(ready_of "${pid[nbd]}" 30)
[[ $line == *"STATUS=serving NBD on 127.0.0.1:$pnbd"* ]] || fail "nbd's READY has no status: $line"
accepts "$pnbd" || fail "basalt-nbd said READY=1 before listening"
kill -CONT "${pid[nbd]}"

# --- basalt-fuse: ready mounted ----------------------------------------------
mkdir -p "$mnt"
NOTIFY_SOCKET=$sock "$build/basalt-fuse" "$mnt" -f -c "$dir/basalt.conf" --log-file "$dir/fuse.log" &
pid[fuse]=$!
line=$(ready_of "${pid[fuse]}" 30)
[[ $line == *"STATUS=mounted on $mnt"* ]] || fail "fuse's READY has no status: $line"
awk -v m="$mnt" '$5 == m' /proc/self/mountinfo | grep -q ' - fuse.basalt ' || fail "basalt-fuse said READY=1 before mounting"
kill -CONT "${pid[fuse]}"
[ -e "$mnt/volumes/v" ] || fail "no volumes/v under the mount"
echo "basalt-nbd and basalt-fuse ready as they should be"

# --- a NOTIFY_SOCKET nobody listens on: a warning, and it serves -------------
NOTIFY_SOCKET=$dir/nobody.sock "$build/basalt-nbd" -c "$dir/basalt.conf" \
	--listen "127.0.0.1:$pnbd2" 2>"$dir/nbd2.log" &
pid[nbd2]=$!
for _ in $(seq 100); do grep -q "cannot tell the service manager" "$dir/nbd2.log" && break; sleep 0.1; done
grep -q "warn .*cannot tell the service manager (NOTIFY_SOCKET=$dir/nobody.sock) that it is ready" \
	"$dir/nbd2.log" || fail "no warning about the unreachable NOTIFY_SOCKET: $(cat "$dir/nbd2.log")"
accepts "$pnbd2" || fail "basalt-nbd with a dead NOTIFY_SOCKET does not serve"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.* nbd warn ' "$dir/nbd2.log" ||
	fail "plain stderr (no JOURNAL_STREAM) lost its timestamps: $(cat "$dir/nbd2.log")"
kill -TERM "${pid[nbd2]}"
wait "${pid[nbd2]}" || fail "basalt-nbd with a dead NOTIFY_SOCKET did not stop cleanly"
unset 'pid[nbd2]'

# --- SIGTERM: STOPPING=1 from each --------------------------------------------
for d in fuse nbd osd.0 mon.a; do
	kill -TERM "${pid[$d]}"
	wait "${pid[$d]}" || fail "$d did not stop cleanly"
	grep -q "^${pid[$d]} STOPPING=1$" "$events" || fail "no STOPPING=1 from $d: $(cat "$events")"
	unset "pid[$d]"
done
echo "every daemon said STOPPING=1"
echo "PASS"
