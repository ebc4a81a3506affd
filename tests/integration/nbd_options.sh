#!/usr/bin/env bash
# basalt-nbd's options and what its log says, on a local cluster:
#  - --handshake-timeout abc, 0, -5 and past an hour are refused (exit 2)
#    with a message naming the value;
#  - a --listen address already in use, and a --socket in a missing
#    directory, are refused naming the reason;
#  - choosing an export waits for nothing on the server's side: with every
#    monitor frozen (no lock can be had), a client's GO and reads are
#    served at once, a write waits for the lock and is done once the
#    monitors are back, and only a client that really chose no export is
#    logged as "no export chosen within the handshake timeout".
#   nbd_options.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: nbd_options.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-nbdopt.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v qemu-io >/dev/null || fail "qemu-io is missing (scripts/install-deps.sh installs it)"

for bad in abc 0 -5 3600001 " 5" 10x; do
	rc=0
	"$build/basalt-nbd" --handshake-timeout "$bad" 2>"$dir/err" || rc=$?
	[ "$rc" = 2 ] || fail "--handshake-timeout '$bad': exit $rc, $(cat "$dir/err")"
	grep -q "handshake-timeout takes whole milliseconds from 1 to 3600000, got '$bad'" "$dir/err" ||
		fail "--handshake-timeout '$bad': $(cat "$dir/err")"
done
echo "options: bad --handshake-timeout values refused with exit 2"
for opt in --max-connections --max-connections-per-host; do
	for bad in abc 0 65537 -1; do
		rc=0
		"$build/basalt-nbd" "$opt" "$bad" 2>"$dir/err" || rc=$?
		[ "$rc" = 2 ] || fail "$opt '$bad': exit $rc, $(cat "$dir/err")"
		grep -q -- "$opt takes a whole number from 1 to 65536, got '$bad'" "$dir/err" ||
			fail "$opt '$bad': $(cat "$dir/err")"
	done
done
echo "options: bad --max-connections and --max-connections-per-host values refused with exit 2"

cluster_up_local 1G
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 16M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

# A port a monitor listens on.
mon_addr=$(sed -n '/^\[mon.a\]/,/^\[/s/^addr = //p' "$dir/basalt.conf")
rc=0
"$build/basalt-nbd" -c "$dir/basalt.conf" --listen "$mon_addr" 2>"$dir/err" || rc=$?
[ "$rc" != 0 ] || fail "basalt-nbd listened on a port in use"
grep -q "cannot listen on $mon_addr: Address already in use" "$dir/err" ||
	fail "listen error: $(cat "$dir/err")"
rc=0
"$build/basalt-nbd" -c "$dir/basalt.conf" --socket "$dir/no/such/dir/nbd.sock" 2>"$dir/err" || rc=$?
[ "$rc" != 0 ] || fail "basalt-nbd listened on a socket in a missing directory"
grep -q "cannot listen on the Unix socket $dir/no/such/dir/nbd.sock: No such file or directory" "$dir/err" ||
	fail "socket error: $(cat "$dir/err")"
echo "options: a listen address in use and a socket path that cannot be made are refused naming the reason"

read -r port < <(free_ports 1)
BASALT_LOG_LEVEL=debug "$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd.log" \
	--listen "127.0.0.1:$port" --handshake-timeout 1000 &
pid[nbd]=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/nbd.log" 2>/dev/null && break; sleep 0.1; done
uri=nbd://127.0.0.1:$port/vm
qemu-io -f raw -c "write -P 0x5a 0 64k" "$uri" >"$dir/w0.out" 2>&1 || fail "write: $(cat "$dir/w0.out")"
sleep 3 # the connection's close gave the lock back
for m in a b c; do kill -STOP "${pid[mon.$m]}"; done
qemu-io -f raw -c "read -P 0x5a 0 64k" "$uri" >"$dir/r.out" 2>&1 ||
	fail "a read with the monitors frozen: $(cat "$dir/r.out")"
qemu-io -f raw -c "write -P 0x6b 0 64k" "$uri" >"$dir/w.out" 2>&1 &
writer=$!
sleep 2.5
kill -0 "$writer" 2>/dev/null || fail "the write did not wait for the lock: $(cat "$dir/w.out")"
for m in a b c; do kill -CONT "${pid[mon.$m]}"; done
wait "$writer" || fail "the write after the monitors came back: $(cat "$dir/w.out")"
qemu-io -f raw -r -c "read -P 0x6b 0 64k" "$uri" >"$dir/r.out" 2>&1 || fail "read back: $(cat "$dir/r.out")"
grep -q "no export chosen" "$dir/nbd.log" &&
	fail "a client that chose an export: $(grep "no export chosen" "$dir/nbd.log")"
# A client that connects and chooses nothing is the one to name.
python3 -c "import socket,time; s=socket.create_connection(('127.0.0.1',$port)); time.sleep(2)"
grep -q "no export chosen within the handshake timeout (1000 ms)" "$dir/nbd.log" ||
	fail "a silent client: $(tail -3 "$dir/nbd.log")"
echo "handshake: GO and reads served with the monitors frozen, the write waited for the lock; only a silent client is logged as choosing no export"
kill "${pid[nbd]}"
wait "${pid[nbd]}" 2>/dev/null || true

# Connection limits: two clients from 127.0.0.1 are held open (inside the
# handshake), the third is closed at once and logged; so is one past
# --max-connections from another address.
"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd2.log" --listen "127.0.0.1:$port" \
	--max-connections 3 --max-connections-per-host 2 &
pid[nbd]=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/nbd2.log" 2>/dev/null && break; sleep 0.1; done
/usr/bin/python3 - "$port" <<'EOF2' || fail "connection limits: $(tail -3 "$dir/nbd2.log")"
import socket, sys
port = int(sys.argv[1])
def client(source):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    return s, s.recv(18)  # the greeting, or b"" when closed at once
held = [client("127.0.0.1") for _ in range(2)]
assert all(len(g) == 18 for _, g in held), "the first two did not get a greeting"
_, g = client("127.0.0.1")
assert g == b"", "a third from one host was served"
_, g = client("127.0.0.2")
assert len(g) == 18, "another host was refused below --max-connections"
_, g = client("127.0.0.2")
assert g == b"", "a fourth connection was served past --max-connections 3"
EOF2
grep -q "refusing 127.0.0.1:[0-9]*: 2 connections from that host open (--max-connections-per-host)" "$dir/nbd2.log" ||
	fail "per-host refusal not logged: $(tail -3 "$dir/nbd2.log")"
grep -q "refusing 127.0.0.2:[0-9]*: 3 connections open (--max-connections)" "$dir/nbd2.log" ||
	fail "--max-connections refusal not logged: $(tail -3 "$dir/nbd2.log")"
echo "limits: a third connection from one host and a fourth overall closed at once, each logged with its option"
echo "PASS nbd_options"
