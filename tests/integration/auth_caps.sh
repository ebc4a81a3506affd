#!/usr/bin/env bash
# Least privilege against real daemons (3 monitors, 3 OSDs on loopback):
# client keys of the map read and write through the OSDs as far as their
# caps say — pool and volume scopes, read-only keys — and every refusal
# names the cause with nothing written; a cap change or a key removal
# reaches open connections; `auth rotate` keeps the old key for its grace
# and then refuses it; a recorded authentication replayed on a new
# connection is refused; and the secret `auth add` prints never crosses
# the network in the clear (tcpdump on loopback).
#   auth_caps.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: auth_caps.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-auth-caps.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
pcap_pid=
trap '{ [ -z "$pcap_pid" ] || kill "$pcap_pid" 2>/dev/null || true; }; cluster_cleanup; rm -rf "$dir"' EXIT

as() { # as ENTITY ARGS...: the CLI as another client, with its keyring
	local who=$1
	shift
	"$build/basalt" -c "$dir/basalt.conf" --name "$who" --keyring "$dir/$who.keyring" --timeout 10 "$@"
}
refused() { # refused "TEXT" COMMAND...: fails, saying TEXT
	local want=$1
	shift
	if "$@" >"$dir/out" 2>"$dir/err"; then fail "'$*' succeeded; expected: $want"; fi
	grep -qF -- "$want" "$dir/err" || fail "'$*' said '$(cat "$dir/err")', expected '$want'"
}
absent() { # absent POOL NAME: the object does not exist (as the admin sees it)
	if cli object stat "$1" "$2" >/dev/null 2>&1; then fail "object $1/$2 exists: a refused write landed"; fi
}

cluster_up_local 256M
cli pool create a --size 3 --pg-num 8 >/dev/null
cli pool create b --size 3 --pg-num 8 >/dev/null
cli volume create web-1 --size 64M --pool a >/dev/null
cli volume create db-1 --size 64M --pool a >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
head -c 8192 /dev/urandom >"$dir/data"

# --- a secret made by the leader crosses the network sealed --------------
# Every secret travels from or to a monitor: capture their ports.
filter=$(sed -n 's/^addr = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/basalt.conf" | head -3 |
	sed 's/^/port /' | paste -sd' ' | sed 's/ port/ or port/g')
pcap_start "$dir/add.pcap" "tcp and ($filter)"
cli auth add client.ro --caps "mon=r osd=r" >"$dir/client.ro.keyring"
cli auth add client.pa --caps "mon=r osd=rw pool=a" >"$dir/client.pa.keyring"
cli auth add client.web --caps "mon=r osd=rw volume=web-*" >"$dir/client.web.keyring"
cli auth add client.mr --caps "mon=rw" >"$dir/client.mr.keyring"
sleep 1.5 # the OSDs fetch the new keys
pcap_stop "$dir/add.pcap"
/usr/bin/python3 - "$dir/add.pcap" "$dir"/client.*.keyring <<'EOF' || fail "a secret crossed the network in the clear"
import base64, sys
cap = open(sys.argv[1], 'rb').read()
assert len(cap) > 4000, "the capture holds %d bytes: nothing captured?" % len(cap)
for path in sys.argv[2:]:
    b64 = [l.split('=', 1)[1].strip() for l in open(path) if l.startswith('key')][0]
    raw = base64.b64decode(b64)
    for needle in (raw, b64.encode(), raw[:12], raw[-12:]):
        assert needle not in cap, "%s: its secret is in the capture" % path
EOF
echo "4 keys added; none of their secrets is in the loopback capture (raw or base64)"

# --- what each key may do -----------------------------------------------
as client.pa object put a aa:1 "$dir/data" >/dev/null || fail "client.pa cannot write pool a: $(cat "$dir/err" 2>/dev/null)"
as client.pa object get a aa:1 "$dir/back" && cmp -s "$dir/data" "$dir/back" || fail "client.pa read back"
refused "Permission denied" as client.pa object put b aa:2 "$dir/data"
absent b aa:2
refused "Permission denied" as client.pa object get b aa:1
refused "Permission denied" as client.ro object put a bb:1 "$dir/data"
absent a bb:1
as client.ro object get a aa:1 "$dir/back" && cmp -s "$dir/data" "$dir/back" || fail "client.ro cannot read"
as client.ro object ls a >/dev/null || fail "client.ro cannot list pool a"
refused "needs mon=rw" as client.ro pool create c
refused "needs admin" as client.mr auth add client.evil --caps admin
refused "needs admin" as client.mr auth caps client.ro admin
as client.mr pool create c --pg-num 8 >/dev/null || fail "client.mr (mon=rw) cannot create a pool"
printf '[client.pa]\nkey = %s\n' "$(head -c 32 /dev/urandom | base64)" >"$dir/wrong.keyring"
refused "refused our key" "$build/basalt" -c "$dir/basalt.conf" --name client.pa \
	--keyring "$dir/wrong.keyring" --timeout 10 object put a aa:9 "$dir/data"
refused "client.nobody is not in the keyring" "$build/basalt" -c "$dir/basalt.conf" --name client.nobody \
	--keyring "$dir/wrong.keyring" --timeout 10 status
absent a aa:9
grep -q "refused to change objects of pool 'b'" "$dir"/osd.*.log || fail "no OSD logged the refusal of pool b"
echo "osd=rw pool=a writes a, not b; osd=r reads and lists, writes nothing; mon=rw changes the map, not keys; a wrong key and no key refused"

# --- volume scopes, through basalt-nbd and qemu-io --------------------------
nbd_start --name client.web --keyring "$dir/client.web.keyring"
qemu-io -f raw "$uri/web-1" -c "write -P 0x5a 0 64k" -c "read -P 0x5a 0 64k" >"$dir/qio" 2>&1 ||
	fail "client.web cannot write web-1: $(cat "$dir/qio")"
if qemu-io -f raw "$uri/db-1" -c "write -P 0x66 0 4k" >"$dir/qio" 2>&1 &&
	! grep -q "failed" "$dir/qio"; then
	fail "client.web wrote db-1: $(cat "$dir/qio")"
fi
if qemu-io -f raw -r "$uri/db-1" -c "read 0 4k" >"$dir/qio" 2>&1 && ! grep -q "failed" "$dir/qio"; then
	fail "client.web read db-1: $(cat "$dir/qio")"
fi
grep -q "refused volume db-1: this server's key may not read it" "$dir/nbd.log" ||
	fail "basalt-nbd did not say why db-1 was refused: $(tail -5 "$dir/nbd.log")"
nbdinfo "$uri/db-1" >"$dir/info" 2>&1 && fail "nbdinfo opened db-1"
grep -q "server replied with error to opt_go" "$dir/info" || fail "nbdinfo db-1: $(cat "$dir/info")"
qemu-io -f raw -r "$uri/db-1" -c "read -P 0 0 4k" >/dev/null 2>&1 &&
	fail "client.web read db-1"
# A qemu-io session kept open across the cap change: its connection (and
# basalt-nbd's to the OSDs) stays, so the OSDs' per-request check refuses.
mkfifo "$dir/held.fifo"
qemu-io -f raw "$uri/web-1" <"$dir/held.fifo" >"$dir/held.out" 2>&1 &
pid[held]=$!
exec 3>"$dir/held.fifo"
echo "write -P 0x61 128k 4k" >&3
for _ in $(seq 50); do grep -q "wrote 4096/4096" "$dir/held.out" && break; sleep 0.1; done
grep -q "wrote 4096/4096" "$dir/held.out" || fail "the held session cannot write: $(cat "$dir/held.out")"
cli auth caps client.web "mon=r osd=r volume=web-*" >/dev/null
for _ in $(seq 50); do
	echo "write -P 0x62 128k 4k" >&3
	sleep 0.3
	grep -q "write failed" "$dir/held.out" && break
done
grep -q "write failed" "$dir/held.out" || fail "an open connection still writes after caps became osd=r"
exec 3>&-
wait "${pid[held]}" 2>/dev/null || true
grep -q "refused to change objects of pool 'a' inode .* for client.web" "$dir"/osd.*.log ||
	fail "no OSD logged the refusal of client.web's write"
for _ in $(seq 50); do
	qemu-io -f raw "$uri/web-1" -c "write -P 0x77 64k 4k" >"$dir/qio" 2>&1 || true
	grep -q "failed\|Permission denied" "$dir/qio" && break
	sleep 0.2
done
grep -q "failed\|Permission denied" "$dir/qio" || fail "web-1 still writable after caps became osd=r: $(cat "$dir/qio")"
grep -q "volume web-1 exported read-only" "$dir/nbd.log" || fail "basalt-nbd did not export web-1 read-only"
qemu-io -f raw -r "$uri/web-1" -c "read -P 0x5a 0 64k" >/dev/null 2>&1 || fail "web-1 no longer readable"
qemu-io -f raw -r "$uri/web-1" -c "read -P 0 64k 4k" >/dev/null 2>&1 || fail "a refused write landed in web-1"
echo "volume=web-* writes web-1, not db-1 (logged why); a cap change applies to the open server's next request"

# --- removal and rotation reach open connections -------------------------
cli auth rm client.web >/dev/null
for _ in $(seq 50); do
	grep -q "closing the connection of client.web" "$dir"/osd.*.log "$dir"/mon.*.log 2>/dev/null && break
	sleep 0.2
done
grep -q "closing the connection of client.web" "$dir"/osd.*.log "$dir"/mon.*.log 2>/dev/null ||
	fail "no daemon closed client.web's connections"
if qemu-io -f raw -r "$uri/web-1" -c "read 0 4k" >"$dir/qio" 2>&1 && ! grep -q "failed" "$dir/qio"; then
	fail "a removed key still reads: $(cat "$dir/qio")"
fi
refused "refused the key of client.web" as client.web status
echo "auth rm closes the key's open connections; its next one is refused"

cp "$dir/client.pa.keyring" "$dir/client.pa.old"
mport=$(sed -n '/^\[mon.a\]/,/^\[/s/^addr = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/basalt.conf")
cli auth rotate client.pa --grace 3s >"$dir/client.pa.keyring" || fail "auth rotate"
# A handshake begun with the old key within its grace, finished after it.
"$build/tests/integration/msgr_tool" straddle --port "$mport" --keyring "$dir/client.pa.old" \
	--name client.pa --count 5500 >"$dir/straddle" 2>&1 &
pid[straddle]=$!
grep -q '^\[client.pa\]$' "$dir/client.pa.keyring" || fail "rotate printed: $(cat "$dir/client.pa.keyring")"
cmp -s "$dir/client.pa.keyring" "$dir/client.pa.old" && fail "rotate kept the secret"
as client.pa object get a aa:1 "$dir/back" || fail "the new key does not work"
"$build/basalt" -c "$dir/basalt.conf" --name client.pa --keyring "$dir/client.pa.old" --timeout 10 \
	object get a aa:1 "$dir/back" || fail "the old key is refused within its grace"
refused "in the grace of its last rotation" cli auth rotate client.pa
cli --json auth ls | /usr/bin/python3 -c 'import json,sys,time
k=[x for x in json.load(sys.stdin) if x["entity"]=="client.pa"][0]
assert 0 < k["previous_key_until_ms"] - time.time()*1000 < 4000, k' || fail "auth ls during the grace: $(cli --json auth ls)"
sleep 4.5
refused "refused the key of client.pa" "$build/basalt" -c "$dir/basalt.conf" --name client.pa \
	--keyring "$dir/client.pa.old" --timeout 10 status
as client.pa object put a aa:3 "$dir/data" >/dev/null || fail "the new key stopped working"
grep -q "client.pa: the previous key's grace is over" "$dir"/mon.*.log || fail "the leader did not log the end"
cli --json auth ls | /usr/bin/python3 -c 'import json,sys
k=[x for x in json.load(sys.stdin) if x["entity"]=="client.pa"][0]
assert "previous_key_until_ms" not in k, k' || fail "auth ls after the grace: $(cli --json auth ls)"
wait "${pid[straddle]}" || fail "straddle: $(cat "$dir/straddle")"
grep -q "HELLO: answered" "$dir/straddle" && grep -q "straddled handshake: refused" "$dir/straddle" ||
	fail "a handshake straddling the end of the grace: $(cat "$dir/straddle")"
echo "auth rotate: both keys work within the grace, the old one is refused after it, even by a handshake begun within it"

# --- a recorded authentication replayed on a new connection -------------
"$build/tests/integration/msgr_tool" replay --port "$mport" --keyring "$dir/keyring" --name client.admin \
	>"$dir/replay" 2>&1 || fail "replay: $(cat "$dir/replay")"
grep -q "first handshake: accepted" "$dir/replay" && grep -q "replayed handshake: refused" "$dir/replay" ||
	fail "replay: $(cat "$dir/replay")"
grep -q "the initiator's proof is wrong" "$dir/mon.a.log" || fail "mon.a did not log the replay"
echo "an authentication replayed on a new connection is refused (the acceptor's nonce differs)"
echo PASS
