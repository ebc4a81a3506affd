#!/usr/bin/env bash
# ms_mode = secure against real daemons (3 monitors, 3 OSDs on loopback):
# a 4 KiB pattern written through basalt-nbd and through libbasalt (the
# CLI) never appears in a capture of the cluster's links; after the same
# cluster restarts with ms_mode = crc the same capture finds it (so the
# check can fail); and a crc client meeting secure daemons, or a secure
# one meeting crc daemons, is refused with the reason logged on both
# sides.
#   secure_links.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: secure_links.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-secure.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
pcap_pid=
trap '{ [ -z "$pcap_pid" ] || kill "$pcap_pid" 2>/dev/null || true; }; cluster_cleanup; rm -rf "$dir"' EXIT

cluster_up_local 256M "ms_mode = secure"
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"
grep -q "the peer runs ms_mode" "$dir"/*.log && fail "a daemon refused another: $(grep -h "ms_mode" "$dir"/*.log)"
nbd_start
# Every monitor and OSD port: the cluster's links, not the NBD client's.
filter="tcp and ($(sed -n 's/^addr = 127.0.0.1:\([0-9]*\)$/port \1/p' "$dir/basalt.conf" | paste -sd' ' |
	sed 's/ port/ or port/g'))"
# A pattern no protocol makes by chance: 4 KiB of one 16-byte phrase.
/usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(b"BasaltPlainText!" * 256)' >"$dir/pattern"

# write_pattern PCAP: through basalt-nbd (qemu-io) and the CLI (libbasalt)
# while capturing; the capture must show traffic.
write_pattern() {
	pcap_start "$1" "$filter"
	qemu-io -f raw "$uri/vm" -c "write -s $dir/pattern 1M 4k" >"$dir/qio" 2>&1 ||
		fail "qemu-io: $(cat "$dir/qio")"
	cli object put rbd 7e57:0 "$dir/pattern" >/dev/null || fail "object put"
	qemu-io -f raw -r "$uri/vm" -c "read -v 1M 16" >"$dir/qio" 2>&1 && grep -q "BasaltPlainText" "$dir/qio" ||
		fail "read back: $(cat "$dir/qio")"
	pcap_stop "$1"
	[ "$(stat -c %s "$1")" -gt 20000 ] || fail "the capture of $1 is nearly empty"
}
# other_mode_refused MODE THEIRS: a client set to MODE is refused by the
# monitors (running THEIRS), and both say why.
other_mode_refused() {
	sed "s/^ms_mode = $2\$/ms_mode = $1/" "$dir/basalt.conf" >"$dir/$1.conf"
	if "$build/basalt" -c "$dir/$1.conf" --timeout 3 status >"$dir/out" 2>"$dir/err"; then
		fail "a $1 client was served by $2 monitors"
	fi
	grep -q "refused: it runs another ms_mode than ours" "$dir/err" ||
		fail "the $1 client did not say why: $(cat "$dir/err")"
	grep -q "the peer runs ms_mode = $1, we run $2" "$dir"/mon.*.log ||
		fail "no monitor said why it refused the $1 client"
}
in_capture() { # in_capture PCAP: the pattern's phrase appears in it
	/usr/bin/python3 -c 'import sys; sys.exit(0 if open(sys.argv[1], "rb").read().count(b"BasaltPlainText") else 1)' "$1"
}

write_pattern "$dir/secure.pcap"
in_capture "$dir/secure.pcap" && fail "secure mode: the pattern crossed the cluster's links in the clear"
echo "secure: the pattern written through basalt-nbd and libbasalt is not in the capture of the cluster's links"

other_mode_refused crc secure
grep -q "we run secure and never talk crc" "$dir"/mon.*.log || fail "the monitors' refusal does not say a secure peer never talks crc"
echo "a crc client and secure monitors refuse each other, each logging why"

# The same cluster and volume in crc mode: now the capture finds it.
kill "${pid[nbd]}"
wait "${pid[nbd]}" 2>/dev/null || true
for d in osd.0 osd.1 osd.2 mon.a mon.b mon.c; do kill "${pid[$d]}"; wait "${pid[$d]}" 2>/dev/null || true; done
cp "$dir/crc.conf" "$dir/basalt.conf"
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader after the restart in crc mode"
for i in 0 1 2; do osd_start "$i"; done
wait_for "s['pgs'].get('active+clean')==8" 60 "PGs active+clean in crc mode"
nbd_start
write_pattern "$dir/crc.pcap"
in_capture "$dir/crc.pcap" || fail "crc mode: the pattern is not in the capture (the check cannot fail)"
echo "crc: the same writes put the pattern on the wire in the clear"

other_mode_refused secure crc
echo "a secure client never talks crc: refused, both sides logging why"
echo PASS
