#!/usr/bin/env bash
# Exclusive volume locks and fencing through basalt-nbd, on a local
# cluster (3 monitors, 3 OSDs, mon_lock_lease = 3s):
#  - a connection takes the volume's lock at its first write (volume info
#    names the holder); a second server's write is refused with EPERM and
#    its log names the holder, while its reads, nbdinfo probes and an
#    nbdfuse -r mount of the same volume work and leave the map's epoch
#    alone; a read-only server needs no lock; volume rm refuses a locked
#    volume;
#  - an entity without osd=rw may not lock; volume unlock without --force
#    refuses;
#  - --break-lock fences the holder: its next writes fail, never land, and
#    the data it had acknowledged is all there; blocklist ls/rm;
#  - a holder killed with kill -9: refused while its lease runs, taken over
#    (and fenced) once it ran out, without --break-lock;
#  - volume unlock --force fences a live holder;
#  - a server stopped with SIGTERM gives its lock back.
#   volume_locks.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: volume_locks.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-locks.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	exec 3>&- 4>&- 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in qemu-io; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G "mon_lock_lease = 3s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
read -r -a ports < <(free_ports 6)

nbd_start() { # nbd_start NAME PORT ARGS...: a server, recorded as pid[NAME]
	local name=$1 port=$2
	shift 2
	"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/$name.log" \
		--listen "127.0.0.1:$port" "$@" 3>&- 4>&- &
	pid[$name]=$!
	for _ in $(seq 50); do grep -q "listening on" "$dir/$name.log" 2>/dev/null && return 0; sleep 0.1; done
	fail "$name did not start"
}
# holder FD NAME PORT: a qemu-io session kept open on fd FD (commands go
# there, its output to $dir/NAME.out), recorded as pid[NAME].
holder() {
	rm -f "$dir/$2.fifo"
	mkfifo "$dir/$2.fifo"
	qemu-io -f raw "nbd://127.0.0.1:$3/vm" <"$dir/$2.fifo" >"$dir/$2.out" 2>&1 3>&- 4>&- &
	pid[$2]=$!
	eval "exec $1>\"$dir/$2.fifo\""
}
# qio [-r] PORT CMD...: one qemu-io run (-r: read-only), its output in $dir/qio.out.
qio() {
	local args=()
	[ "$1" = -r ] && { args+=(-r); shift; }
	local port=$1
	shift
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f raw "${args[@]}" "nbd://127.0.0.1:$port/vm" >"$dir/qio.out" 2>&1 3>&- 4>&-
}
wait_file() { # wait_file FILE PATTERN SECONDS WHAT
	for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	fail "$4: $(tail -3 "$1" 2>/dev/null)"
}
lock_of() { # the volume's lock owner as volume info --json shows it ("" when none)
	cli --json volume info vm | python3 -c \
		"import json,sys; l=json.load(sys.stdin)['lock']; print(l['owner'] if l else '')"
}
client_of() {
	cli --json volume info vm | python3 -c \
		"import json,sys; l=json.load(sys.stdin)['lock']; print(l['client'] if l else '')"
}

# --- A holds the lock; B is refused; reads need no lock ---
nbd_start nbdA "${ports[0]}"
holder 3 qA "${ports[0]}"
echo "write -P 0x11 0 1M" >&3
wait_file "$dir/qA.out" "wrote 1048576/1048576" 10 "A's first write"
[[ "$(lock_of)" == *"pid ${pid[nbdA]}"* ]] || fail "volume info does not name A as the holder: $(lock_of)"
clientA=$(client_of)
nbd_start nbdB "${ports[1]}"
# Looks at a volume A writes take no lock: the map does not move.
epoch0=$(js "s['epoch']")
nbdinfo "nbd://127.0.0.1:${ports[1]}/vm" >"$dir/nbdinfo.out" 2>&1 ||
	fail "nbdinfo could not look at a volume A holds: $(cat "$dir/nbdinfo.out")"
grep -q "67108864" "$dir/nbdinfo.out" || fail "nbdinfo: $(cat "$dir/nbdinfo.out")"
qio "${ports[1]}" "read -P 0x11 0 1M" || fail "B could not read what A wrote: $(cat "$dir/qio.out")"
mkdir "$dir/nbdfuse"
nbdfuse -r "$dir/nbdfuse" "nbd://127.0.0.1:${ports[1]}/vm" 3>&- 4>&- &
pid[nbdfuse]=$!
for _ in $(seq 50); do [ -e "$dir/nbdfuse/nbd" ] && break; sleep 0.1; done
cmp -n 1048576 "$dir/nbdfuse/nbd" <(head -c 1M /dev/zero | tr '\0' '\021') ||
	fail "nbdfuse -r did not read A's data"
fusermount3 -u "$dir/nbdfuse"
wait "${pid[nbdfuse]}" || true
[ "$(js "s['epoch']")" = "$epoch0" ] || fail "looks moved the map from epoch $epoch0 to $(js "s['epoch']")"
[[ "$(lock_of)" == *"pid ${pid[nbdA]}"* ]] || fail "A lost the lock to a look: $(lock_of)"
# B's first write asks for the lock: refused, the holder named in B's log.
qio "${ports[1]}" "write -P 0x22 0 4k" && fail "B wrote to a volume A holds: $(cat "$dir/qio.out")"
grep -q "Operation not permitted" "$dir/qio.out" || fail "B's write: $(cat "$dir/qio.out")"
grep -q "volume vm cannot be changed .*locked by client.admin on .* pid ${pid[nbdA]}" "$dir/nbdB.log" ||
	fail "B's log does not name the holder: $(tail -3 "$dir/nbdB.log")"
grep -q "break-lock" "$dir/nbdB.log" || fail "B's log does not say how to take over"
for cmd in "write -z 0 4k" "discard 0 64k" "flush"; do
	qio "${ports[1]}" "$cmd" && fail "B's $cmd ran on a volume A holds: $(cat "$dir/qio.out")"
done
qio "${ports[1]}" "read -P 0x11 0 1M" || fail "B's refused write changed the volume: $(cat "$dir/qio.out")"
grep -q "no export chosen" "$dir/nbdB.log" && fail "B's log: $(grep "no export chosen" "$dir/nbdB.log")"
nbd_start nbdR "${ports[2]}" --read-only
qio -r "${ports[2]}" "read -P 0x11 0 1M" || fail "a read-only server could not read: $(cat "$dir/qio.out")"
cli volume rm vm >"$dir/rm.out" 2>&1 && fail "volume rm removed a locked volume"
grep -q "is in use: locked by" "$dir/rm.out" || fail "volume rm: $(cat "$dir/rm.out")"
cli volume unlock vm >"$dir/unlock.out" 2>&1 && fail "volume unlock without --force"
grep -q -- "--force" "$dir/unlock.out" || fail "volume unlock: $(cat "$dir/unlock.out")"
echo "locks: A holds vm; nbdinfo, reads and nbdfuse -r through B need no lock and leave the epoch; B's write, write-zeroes, trim and flush refused naming A; read-only served; rm and unlock without --force refused"

# An entity that may only read cannot lock.
cli auth add client.reader --caps "mon=r osd=r" >"$dir/reader.keyring" || fail "auth add"
"$build/basalt-nbd" -c "$dir/basalt.conf" --keyring "$dir/reader.keyring" --name client.reader \
	--log-file "$dir/nbdRd.log" --listen "127.0.0.1:${ports[3]}" 3>&- 4>&- &
pid[nbdRd]=$!
wait_file "$dir/nbdRd.log" "listening on" 5 "reader server"
qio "${ports[3]}" "write 0 4k" && fail "client.reader took a lock"
grep -q "volume vm exported read-only: this server's key may not write it" "$dir/nbdRd.log" ||
	fail "reader: $(tail -3 "$dir/nbdRd.log")"
qio -r "${ports[3]}" "read -P 0x11 0 1M" || fail "client.reader cannot read: $(cat "$dir/qio.out")"
kill "${pid[nbdRd]}"
wait "${pid[nbdRd]}" || true
echo "locks: an entity with osd=r gets a read-only export and never locks"

# --- C breaks the lock: A is fenced ---
nbd_start nbdC "${ports[3]}" --break-lock
qio "${ports[3]}" "read -P 0x11 0 1M" "write -P 0x33 1M 1M" ||
	fail "C could not break the lock: $(cat "$dir/qio.out")"
cli blocklist ls >"$dir/bl"
grep -q "^$clientA .*pid ${pid[nbdA]}" "$dir/bl" || fail "blocklist: $(cat "$dir/bl")"
! grep -q "no fenced clients" "$dir/bl" || fail "blocklist lists A and says there is none: $(cat "$dir/bl")"
echo "write -P 0x44 0 1M" >&3
echo "write -P 0x44 2M 64k" >&3
wait_file "$dir/nbdA.log" "was fenced" 10 "A was not told it is fenced"
wait_file "$dir/qA.out" "write failed" 10 "A's late write did not fail"
sleep 1
qio -r "${ports[2]}" "read -P 0x11 0 1M" "read -P 0x33 1M 1M" "read -P 0 2M 64k" ||
	fail "A's late writes reached the volume: $(cat "$dir/qio.out")"
exec 3>&-
wait "${pid[qA]}" 2>/dev/null || true
cli blocklist rm "$clientA" >/dev/null || fail "blocklist rm"
cli blocklist ls | grep -q "no fenced clients" || fail "blocklist rm left $(cli blocklist ls)"
kill "${pid[nbdA]}"
wait "${pid[nbdA]}" || true
echo "break-lock: A fenced at once, its late writes refused, its acknowledged data intact; blocklist rm"

# --- D dies holding the lock: the lease runs out ---
nbd_start nbdD "${ports[4]}"
holder 4 qD "${ports[4]}"
echo "write -P 0x55 0 64k" >&4
wait_file "$dir/qD.out" "wrote 65536/65536" 10 "D's write"
clientD=$(client_of)
{ kill -9 "${pid[nbdD]}"; wait "${pid[nbdD]}"; } 2>/dev/null || true
exec 4>&-
wait "${pid[qD]}" 2>/dev/null || true
qio "${ports[1]}" "write -P 0x66 0 4k" && fail "B took the lock while D's lease ran"
grep -q "lease left" "$dir/nbdB.log" || fail "B's refusal: $(tail -3 "$dir/nbdB.log")"
ok=0
for _ in $(seq 40); do
	if qio "${ports[1]}" "write -P 0x66 0 4k"; then ok=1; break; fi
	sleep 0.25
done
[ "$ok" = 1 ] || fail "B never took the lock of a dead holder: $(cat "$dir/qio.out")"
cli blocklist ls | grep -q "^$clientD " || fail "D was not fenced on takeover"
echo "lease: a dead holder's lock is refused while its lease runs, then taken over (and D fenced)"

# --- volume unlock --force fences a live holder ---
holder 3 qB "${ports[1]}"
echo "write -P 0x77 0 4k" >&3
wait_file "$dir/qB.out" "wrote 4096/4096" 10 "B's write"
[[ "$(lock_of)" == *"pid ${pid[nbdB]}"* ]] || fail "B does not hold the lock: $(lock_of)"
cli volume unlock vm --force >/dev/null || fail "volume unlock --force"
[ -z "$(lock_of)" ] || fail "still locked after unlock --force: $(lock_of)"
wait_file "$dir/nbdB.log" "was fenced" 10 "B was not fenced by unlock --force"
exec 3>&-
wait "${pid[qB]}" 2>/dev/null || true
echo "unlock --force: the lock is free and its holder fenced"

# --- a clean stop gives the lock back ---
holder 3 qC "${ports[3]}"
echo "write -P 0x12 0 4k" >&3
wait_file "$dir/qC.out" "wrote 4096/4096" 10 "C's write"
[[ "$(lock_of)" == *"pid ${pid[nbdC]}"* ]] || fail "C does not hold the lock: $(lock_of)"
exec 3>&-
wait "${pid[qC]}" 2>/dev/null || true
# basalt-nbd gives it back when it sees the connection close: soon, not
# necessarily before the next look.
for _ in $(seq 50); do [ -z "$(lock_of)" ] && break; sleep 0.1; done
[ -z "$(lock_of)" ] || fail "the last connection closed, the lock stayed: $(lock_of)"
holder 3 qC2 "${ports[3]}"
echo "write -P 0x13 0 4k" >&3
wait_file "$dir/qC2.out" "wrote 4096/4096" 10 "C's second write"
kill "${pid[nbdC]}"
wait "${pid[nbdC]}" || fail "basalt-nbd exited non-zero on SIGTERM"
exec 3>&-
wait "${pid[qC2]}" 2>/dev/null || true
[ -z "$(lock_of)" ] || fail "SIGTERM left the lock held: $(lock_of)"
echo "release: the last connection closing, and SIGTERM, give the lock back"
echo "PASS volume_locks"
