#!/usr/bin/env bash
# basalt-nbd over TLS (--tls on|require), on a local cluster, against the
# GnuTLS clients (libnbd's nbdinfo and nbdcopy, qemu-img, qemu-io):
#  - start-up refusals: --tls without credentials, credentials without
#    --tls, a bad --tls value, a PSK file others may read, a bad line (named
#    FILE:LINE), a certificate directory without its files;
#  - --tls require with X.509 (a CA and certificates from tls_certs.sh) and
#    a PSK file on one server: nbdinfo nbds://...?tls-certificates=DIR and
#    ?tls-psk-file=FILE, qemu-img convert to and from it byte for byte,
#    nbdcopy both ways, qemu-io patterns with tls-creds-x509 and
#    tls-creds-psk;
#  - refused: a plain client (nbdinfo nbd://, and what it prints), a wrong
#    PSK, an unknown PSK identity, a client trusting another CA, and
#    without a client certificate under --tls-verify-peer (with one: served);
#  - --tls on serves plain and TLS clients alike;
#  - tcpdump on lo: a distinctive 4 KiB block written over TLS never shows
#    in the capture, while the same write in plain NBD does (so the check
#    can fail);
#  - nbd_bad_input.py --tls require|on: the protocol's TLS cases (option
#    before STARTTLS, EXPORT_NAME, STARTTLS with data or twice, plaintext
#    behind STARTTLS, garbage or a stall instead of a ClientHello).
#   nbd_tls.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: nbd_tls.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-nbdtls.XXXXXX)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster_lib.sh"
tcpdump_pid=
cleanup() {
	[ -n "$tcpdump_pid" ] && { kill "$tcpdump_pid" 2>/dev/null; wait "$tcpdump_pid" 2>/dev/null; }
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in nbdinfo nbdcopy qemu-img qemu-io openssl tcpdump; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

# Credentials: X.509 as qemu/libnbd/nbdkit read a directory, PSK files in
# psktool's format (qemu reads DIR/keys.psk).
"$here/tls_certs.sh" "$dir/certs" >/dev/null
"$here/tls_certs.sh" "$dir/other" >/dev/null # another CA
mkdir -p "$dir/ca-only" "$dir/psk" "$dir/psk-wrong" "$dir/psk-bob"
cp "$dir/certs/ca-cert.pem" "$dir/ca-only/"
hexkey() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
key=$(hexkey)
printf 'alice:%s\n' "$key" >"$dir/psk/keys.psk"
printf 'alice:%s\n' "$(hexkey)" >"$dir/psk-wrong/keys.psk"
printf 'bob:%s\n' "$key" >"$dir/psk-bob/keys.psk"
chmod 600 "$dir"/psk*/keys.psk

cluster_up_local 1G
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

# refused PATTERN ARGS...: basalt-nbd exits non-zero saying PATTERN.
refused() {
	local want=$1 rc=0
	shift
	"$build/basalt-nbd" -c "$dir/basalt.conf" --listen 127.0.0.1:1 "$@" 2>"$dir/err" || rc=$?
	[ "$rc" != 0 ] || fail "basalt-nbd $* started"
	grep -q -- "$want" "$dir/err" || fail "basalt-nbd $*: $(cat "$dir/err")"
}
refused "--tls require needs --tls-certificates DIR" --tls require
refused "--tls on needs --tls-certificates DIR" --tls on
refused "--tls-psk needs --tls on or --tls require" --tls-psk "$dir/psk/keys.psk"
refused "--tls-certificates needs --tls on or --tls require" --tls off --tls-certificates "$dir/certs"
refused "--tls takes off, on or require, got 'yes'" --tls yes
refused "--tls-verify-peer needs --tls-certificates" --tls on --tls-psk "$dir/psk/keys.psk" --tls-verify-peer
cp "$dir/psk/keys.psk" "$dir/open.psk" && chmod 644 "$dir/open.psk"
refused "others may read or write it (mode 0644): chmod o-rwx $dir/open.psk" --tls on --tls-psk "$dir/open.psk"
printf 'alice:%s\nbob:12345\n' "$key" >"$dir/bad.psk" && chmod 600 "$dir/bad.psk"
refused "$dir/bad.psk:2: the key must be 1 to 64 bytes" --tls on --tls-psk "$dir/bad.psk"
refused "$dir/ca-only/server-cert.pem: " --tls on --tls-certificates "$dir/ca-only"
echo "options: every wrong --tls combination refused naming the fix; a PSK file others may read, a bad line (FILE:LINE), a directory without certificates"

# nbd_tls_start NAME ARGS...: a server on a free port ($port[NAME]).
declare -A port
nbd_tls_start() {
	local name=$1 p
	shift
	read -r p < <(free_ports 1)
	BASALT_LOG_LEVEL=debug "$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/$name.log" \
		--listen "127.0.0.1:$p" "$@" &
	pid[$name]=$!
	port[$name]=$p
	for _ in $(seq 50); do grep -q "listening on" "$dir/$name.log" 2>/dev/null && return 0; sleep 0.1; done
	fail "$name did not start"
}
nbd_tls_start req --tls require --tls-certificates "$dir/certs" --tls-psk "$dir/psk/keys.psk" \
	--handshake-timeout 1500
nbd_tls_start on --tls on --tls-certificates "$dir/certs"
nbd_tls_start peer --tls require --tls-certificates "$dir/certs" --tls-verify-peer
req=127.0.0.1:${port[req]}
x509="nbds://$req/vm?tls-certificates=$dir/certs"
psk="nbds://alice@$req/vm?tls-psk-file=$dir/psk/keys.psk"
creds_x509="tls-creds-x509,id=tls0,endpoint=client,dir=$dir/certs"
creds_psk="tls-creds-psk,id=tls0,endpoint=client,dir=$dir/psk,username=alice"
opts="driver=nbd,host=127.0.0.1,port=${port[req]},export=vm,tls-creds=tls0"

nbdinfo --json "$x509" >"$dir/info" || fail "nbdinfo over X.509"
grep -q '"export-size": 67108864' "$dir/info" || fail "nbdinfo: $(cat "$dir/info")"
nbdinfo --size "$psk" >"$dir/size" || fail "nbdinfo over PSK"
[ "$(cat "$dir/size")" = 67108864 ] || fail "nbdinfo over PSK: $(cat "$dir/size")"
grep -q "TLS up (TLSv1.3 TLS_AES_128_GCM_SHA256, PSK identity alice)" "$dir/req.log" ||
	fail "no PSK session logged: $(grep 'TLS' "$dir/req.log")"
grep -q "TLS up (TLSv1.3 .*, X.509)" "$dir/req.log" || fail "no X.509 session logged"
echo "nbdinfo: the export over TLS 1.3 with X.509 and with a PSK (identity logged)"

head -c $((16 << 20)) /dev/urandom >"$dir/img"
qemu-img convert -n -f raw --object "$creds_x509" --target-image-opts "$dir/img" "$opts" ||
	fail "qemu-img convert to nbds"
qemu-img convert -O raw --object "$creds_psk" --image-opts "$opts" "$dir/back" ||
	fail "qemu-img convert from nbds (PSK)"
cmp -n $((16 << 20)) "$dir/img" "$dir/back" || fail "qemu-img: the image came back different"
nbdcopy "$dir/back" "$psk" || fail "nbdcopy to nbds (PSK)"
nbdcopy "$x509" "$dir/back2" || fail "nbdcopy from nbds"
cmp "$dir/back" "$dir/back2" || fail "nbdcopy: different"
echo "qemu-img convert and nbdcopy: 16 MiB to and from nbds://, byte for byte, X.509 and PSK"

for creds in "$creds_x509" "$creds_psk"; do
	qemu-io --object "$creds" --image-opts "$opts" \
		-c "write -P 0xa5 1m 1m" -c "read -P 0xa5 1m 1m" -c "write -P 0x3c 4096 512" \
		-c "read -P 0x3c 4096 512" -c "flush" >"$dir/qemu-io" 2>&1 || fail "qemu-io: $(cat "$dir/qemu-io")"
	! grep -qi "fail\|error\|mismatch" "$dir/qemu-io" || fail "qemu-io: $(cat "$dir/qemu-io")"
done
echo "qemu-io: patterns written and read back over tls-creds-x509 and tls-creds-psk"

# Refusals, and what the client says.
nbdinfo "nbd://$req/vm" >"$dir/out" 2>&1 && fail "a plain client was served by --tls require"
echo "  a plain nbdinfo says: $(grep '^nbdinfo: nbd_opt_go' "$dir/out")"
LIBNBD_DEBUG=1 nbdinfo "nbd://$req/vm" >"$dir/out" 2>&1 || true
grep -q "server error message: this server requires TLS: send STARTTLS first" "$dir/out" ||
	fail "a plain client: $(grep -i "tls\|error" "$dir/out")"
grep -q "option 7 refused: this server requires TLS" "$dir/req.log" || fail "no TLS_REQD logged"
nbdinfo "nbds://alice@$req/vm?tls-psk-file=$dir/psk-wrong/keys.psk" >"$dir/out" 2>&1 &&
	fail "a wrong PSK was served"
grep -q "TLS handshake failed: binder does not verify; closing" "$dir/req.log" ||
	fail "wrong PSK: $(grep warn "$dir/req.log" | tail -2)"
nbdinfo "nbds://bob@$req/vm?tls-psk-file=$dir/psk-bob/keys.psk" >"$dir/out" 2>&1 &&
	fail "an unknown PSK identity was served"
grep -q "TLS handshake failed: unknown PSK identity 'bob'" "$dir/req.log" || fail "unknown identity not logged"
nbdinfo "nbds://$req/vm?tls-certificates=$dir/other" >"$dir/out" 2>&1 &&
	fail "a client trusting another CA was served"
peer="nbds://127.0.0.1:${port[peer]}/vm"
nbdinfo "$peer?tls-certificates=$dir/ca-only" >"$dir/out" 2>&1 &&
	fail "--tls-verify-peer served a client without a certificate"
grep -q "TLS handshake failed: peer did not return a certificate" "$dir/peer.log" ||
	fail "no client certificate: $(grep warn "$dir/peer.log" | tail -2)"
nbdinfo --size "$peer?tls-certificates=$dir/certs" >/dev/null || fail "--tls-verify-peer with a certificate"
echo "refused: plain client, wrong PSK, unknown identity, another CA, no client certificate; served with one"

on=127.0.0.1:${port[on]}
qemu-io -f raw -c "read -P 0xa5 1m 1m" "nbd://$on/vm" >"$dir/qemu-io" 2>&1 ||
	fail "a plain client of --tls on: $(cat "$dir/qemu-io")"
nbdinfo --size "nbds://$on/vm?tls-certificates=$dir/certs" >/dev/null || fail "a TLS client of --tls on"
grep -q "exporting volume vm of 67108864 bytes.* over TLS" "$dir/on.log" || fail "--tls on: no TLS export"
echo "--tls on: a plain and a TLS client both served"

# capture PORT URI [plain]: tcpdump on lo while nbdcopy writes the 4 KiB
# canary to URI; the number of times the canary's text is in the capture.
# With "plain", the capture also waits (up to 10 s) for the canary itself
# to be written out: the last connection's packets alone did not always
# mean nbdcopy's were written (seen once in a fresh-clone run).
python3 -c "import os; m = b'BASALT-TLS-CANARY-' + os.urandom(6).hex().encode() + b'/'
open('$dir/canary', 'wb').write((m * 200)[:4096])"
capture() {
	local cap=$dir/cap.$1.pcap
	tcpdump -i lo --immediate-mode -U -w "$cap" "tcp port $1" 2>"$dir/tcpdump.err" &
	tcpdump_pid=$!
	# Running once the capture holds a probe connection's packets.
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()"
		[ "$(stat -c %s "$cap" 2>/dev/null || echo 0)" -gt 24 ] && break
		sleep 0.1
	done
	nbdcopy "$dir/canary" "$2" || fail "nbdcopy of the canary to $2"
	# A last connection from a source port of our own: the kernel queues
	# packets in order, so once tcpdump has written this one, it has
	# written every packet of nbdcopy's (stopping it any earlier drops the
	# ones still queued, a fixed sleep is too short on a loaded machine).
	local src seen=
	read -r src < <(free_ports 1)
	python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', $src))
s.connect(('127.0.0.1', $1)); s.close()"
	for _ in $(seq 200); do
		[ -n "$(tcpdump -r "$cap" -n "src port $src" 2>/dev/null)" ] && { seen=1; break; }
		sleep 0.05
	done
	[ -n "$seen" ] || fail "tcpdump did not capture the last connection within 10 s"
	for _ in $(seq 200); do
		[ "${3:-}" = plain ] || break
		python3 -c "import sys; sys.exit(b'BASALT-TLS-CANARY' not in open(sys.argv[1], 'rb').read())" "$cap" &&
			break
		sleep 0.05
	done
	kill -INT "$tcpdump_pid"
	wait "$tcpdump_pid" 2>/dev/null || true
	tcpdump_pid=
	[ "$(stat -c %s "$cap")" -gt 4096 ] || fail "the capture is too small: $(cat "$dir/tcpdump.err")"
	python3 -c "import sys; print(open(sys.argv[1], 'rb').read().count(b'BASALT-TLS-CANARY'))" "$cap"
}
n=$(capture "${port[req]}" "$x509")
[ "$n" = 0 ] || fail "the canary is in the capture of a TLS connection ($n times)"
nbdcopy "$x509" "$dir/check" && cmp -n 4096 "$dir/canary" "$dir/check" || fail "the canary was not written"
n=$(capture "${port[on]}" "nbd://$on/vm" plain)
[ "$n" -gt 0 ] || fail "the canary is not in the capture of a plain connection"
echo "tcpdump: a 4 KiB canary written over TLS is not on the wire; in plain NBD it is ($n copies of its marker)"

python3 "$here/nbd_bad_input.py" 127.0.0.1 "${port[req]}" vm $((64 << 20)) --tls require \
	"$dir/certs/ca-cert.pem" || fail "nbd_bad_input.py --tls require"
grep -q "no TLS handshake within the handshake timeout (1500 ms)" "$dir/req.log" ||
	fail "a client stalled in TLS was not dropped by the handshake timeout"
python3 "$here/nbd_bad_input.py" 127.0.0.1 "${port[on]}" vm $((64 << 20)) --tls on \
	"$dir/certs/ca-cert.pem" || fail "nbd_bad_input.py --tls on"
for name in req on peer; do
	kill -0 "${pid[$name]}" || fail "basalt-nbd ($name) died"
done
echo "PASS nbd_tls"
