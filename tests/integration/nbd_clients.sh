#!/usr/bin/env bash
# basalt-nbd against real NBD clients, on a local cluster (3 monitors,
# 3 OSDs, a pool of size 3, a 256 MiB volume):
#  - nbdinfo --list and nbdinfo: the export, its size, block sizes, flags;
#  - qemu-img convert of a random image in and out, byte for byte, and
#    qemu-img map seeing written data and holes (BLOCK_STATUS);
#  - qemu-io patterns: write, read, write-zeroes, discard, 512-byte writes;
#  - nbdcopy both ways (several connections at once);
#  - nbdfuse + mkfs.ext4 + mount -o loop + a tree of files + fsck.ext4 -fn
#    clean + remount and compare;
#  - fio's nbd engine with verify=crc32c at QD1 and QD32;
#  - TRIM of everything: the cluster's usage drops at once;
#  - the Unix socket, and a read-only server refusing writes;
#  - bad input (nbd_bad_input.py): malformed handshakes and options, names
#    too long, unknown options and commands, requests out of range,
#    misaligned or oversized, clients that vanish half way: each gets the
#    protocol's error or a closed connection, and the server goes on.
#   nbd_clients.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: nbd_clients.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-nbd.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mount_dirs
trap mount_cleanup EXIT
for tool in nbdinfo nbdcopy nbdfuse qemu-img qemu-io fio mkfs.ext4; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm1 --size 256M --pool rbd >/dev/null
cli volume create small --size 1M --pool rbd >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
read -r port < <(free_ports 1)
nbd_start() { # nbd_start NAME ARGS...: a server, recorded as pid[NAME]
	local name=$1
	shift
	"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/$name.log" "$@" &
	pid[$name]=$!
	for _ in $(seq 50); do grep -q "listening on" "$dir/$name.log" 2>/dev/null && return 0; sleep 0.1; done
	fail "$name did not start"
}
nbd_start nbd --listen "127.0.0.1:$port" --socket "$dir/nbd.sock"
uri=nbd://127.0.0.1:$port/vm1

nbdinfo --list "nbd://127.0.0.1:$port" >"$dir/list" || fail "nbdinfo --list"
grep -q 'export="vm1"' "$dir/list" && grep -q 'export="small"' "$dir/list" ||
	fail "the list: $(cat "$dir/list")"
nbdinfo --json "$uri" >"$dir/info" || fail "nbdinfo"
python3 - "$dir/info" <<'EOF' || fail "nbdinfo: $(cat "$dir/info")"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-size"] == 256 << 20, e
assert e["block_size_minimum"] == 512 and e["block_size_preferred"] == 131072, e
assert e["block_size_maximum"] == 32 << 20, e
for f in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_multi_conn"):
    assert e[f], f
assert not e["is_read_only"], e
assert "base:allocation" in e["contexts"], e
EOF
echo "nbdinfo: both volumes listed; vm1 256 MiB, blocks 512/128K/32M, flush fua trim zero multi-conn"

head -c $((64 << 20)) /dev/urandom >"$dir/img"
qemu-img convert -n -f raw -O raw "$dir/img" "$uri" || fail "qemu-img convert in"
qemu-img convert -f raw -O raw "$uri" "$dir/back" || fail "qemu-img convert out"
cmp -n $((64 << 20)) "$dir/img" "$dir/back" || fail "the image came back different"
cmp -i $((64 << 20)) -n $((192 << 20)) "$dir/back" /dev/zero || fail "the rest is not zeros"
qemu-img map --output=json "$uri" >"$dir/map" || fail "qemu-img map"
python3 - "$dir/map" <<'EOF' || fail "qemu-img map: $(cat "$dir/map")"
import json, sys
m = json.load(open(sys.argv[1]))
data = sum(x["length"] for x in m if x["data"])
assert data == 64 << 20, m
assert any(not x["data"] and x["zero"] for x in m), m
EOF
echo "qemu-img: 64 MiB in and out byte for byte; map shows 64 MiB of data, the rest holes"

qemu-io -f raw "$uri" \
	-c "write -P 0xab 1000448 8192" -c "read -P 0xab 1000448 8192" \
	-c "write -z 1000448 4096" -c "read -P 0 1000448 4096" -c "read -P 0xab 1004544 4096" \
	-c "discard 0 131072" -c "read -P 0 0 131072" \
	-c "write -P 0x11 512 512" -c "read -P 0x11 512 512" -c "read -P 0 0 512" \
	-c "read -P 0 1024 3072" -c "flush" >"$dir/qemu-io" 2>&1 || fail "qemu-io: $(cat "$dir/qemu-io")"
! grep -qi "fail\|error\|mismatch" "$dir/qemu-io" || fail "qemu-io: $(cat "$dir/qemu-io")"
echo "qemu-io: patterns, write-zeroes, discard and 512-byte writes verified"

nbdcopy "$dir/img" "nbd+unix:///vm1?socket=$dir/nbd.sock" || fail "nbdcopy in (Unix socket)"
nbdcopy "$uri" "$dir/back2" || fail "nbdcopy out"
cmp -n $((64 << 20)) "$dir/img" "$dir/back2" || fail "nbdcopy: different"
echo "nbdcopy: in over the Unix socket, out over TCP, byte for byte"

nbdfuse "$fuse/disk" "$uri" &
for _ in $(seq 50); do [ -e "$fuse/disk" ] && break; sleep 0.1; done
mkfs.ext4 -q -F "$fuse/disk" || fail "mkfs.ext4"
mount -o loop "$fuse/disk" "$mnt" || fail "mount"
cp -r "$(dirname "$0")/../../osd" "$(dirname "$0")/../../common" "$mnt/"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) >"$dir/sums"
umount "$mnt"
fsck.ext4 -fn "$fuse/disk" >"$dir/fsck" 2>&1 || fail "fsck: $(tail -5 "$dir/fsck")"
mount -o loop "$fuse/disk" "$mnt" || fail "remount"
(cd "$mnt" && find . -type f -exec sha256sum {} + | sort -k2) | cmp -s - "$dir/sums" ||
	fail "the files changed across a remount"
umount "$mnt"
fusermount3 -u "$fuse" 2>/dev/null || umount "$fuse"
echo "nbdfuse: ext4 made, $(wc -l <"$dir/sums") files written, fsck clean, same after a remount"

for qd in 1 32; do
	fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=$qd \
		--size=16m --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output-format=json \
		--output="$dir/fio.$qd" >"$dir/fio.err" 2>&1 || fail "fio QD$qd: $(tail -5 "$dir/fio.err")"
	python3 -c "import json,sys; j=json.load(open(sys.argv[1]))['jobs'][0]; sys.exit(j['error'])" \
		"$dir/fio.$qd" || fail "fio QD$qd reported an error"
done
echo "fio nbd engine: random 4k writes verified with crc32c at QD1 and QD32"

nbdcopy "$dir/img" "$uri" || fail "nbdcopy before the TRIM"
wait_for "s['usage']['stored_bytes'] > (60 << 20)" 10 "usage counted"
before=$(js "s['usage']['used_bytes']")
qemu-io -f raw "$uri" -c "discard 0 $((256 << 20))" >/dev/null || fail "discard all"
wait_for "s['usage']['used_bytes'] < $before - 3 * (60 << 20)" 10 "space back after TRIM"
floor=$(js "s['usage']['used_bytes']") # the store's journal and metadata
echo "TRIM of the whole volume: used bytes $before -> $floor"

# The volume's life cycle frees space at once: info counts what it uses,
# a shrink frees the objects past the end and zeroes the tail, rm frees all.
nbdcopy "$dir/img" "$uri" || fail "nbdcopy before the resize"
used() { cli --json volume info vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["used_bytes"])'; }
[ "$(used)" -ge $((64 << 20)) ] || fail "volume info: $(cli volume info vm1)"
# The last writer's lock goes back in the background; a shrink waits for it.
for _ in $(seq 50); do
	[ "$(cli --json volume info vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["lock"])')" = None ] && break
	sleep 0.1
done
cli volume resize vm1 $((32 << 20 | 4096)) --allow-shrink >"$dir/resize" || fail "shrink: $(cat "$dir/resize")"
grep -q "freed 255 objects" "$dir/resize" || fail "shrink: $(cat "$dir/resize")"
[ "$(used)" -le $((32 << 20 | 128 << 10)) ] || fail "after the shrink: $(cli volume info vm1)"
cli volume resize vm1 256M >/dev/null || fail "grow"
# basalt-nbd's map follows the monitors a hop behind the command's reply.
for _ in $(seq 50); do
	[ "$(nbdinfo --size "$uri")" = $((256 << 20)) ] && break
	sleep 0.1
done
qemu-io -f raw "$uri" -c "read -P 0 $((32 << 20 | 4096)) $((1 << 20))" >"$dir/tail" 2>&1 &&
	! grep -qi "fail" "$dir/tail" || fail "the cut-off tail came back: $(cat "$dir/tail")"
wait_for "s['usage']['used_bytes'] > $floor + 3 * (32 << 20)" 10 "usage counted the 32 MiB"
cli volume rm vm1 >"$dir/rm" || fail "volume rm"
grep -q "freed 257 objects" "$dir/rm" || fail "rm: $(cat "$dir/rm")"
wait_for "s['usage']['used_bytes'] <= $floor" 10 "space back after rm"
cli volume create vm1 --size 256M --pool rbd >/dev/null
echo "volume life cycle: info counted 64 MiB, a shrink freed 255 objects and zeroed the tail, rm freed the rest"

kill "${pid[nbd]}"
wait "${pid[nbd]}" || fail "basalt-nbd did not exit cleanly on SIGTERM"
unset 'pid[nbd]'
nbd_start ro --listen "127.0.0.1:$port" --read-only
nbdinfo --json "$uri" | python3 -c 'import json,sys; assert json.load(sys.stdin)["exports"][0]["is_read_only"]' ||
	fail "--read-only not advertised"
if qemu-io -f raw "$uri" -c "write 0 4096" >"$dir/ro" 2>&1 && ! grep -qi "error\|not permitted\|read-only" "$dir/ro"; then
	fail "a write went through a read-only export"
fi
qemu-io -f raw -r "$uri" -c "read -P 0 0 4096" >/dev/null || fail "read from a read-only export"
echo "read-only: advertised, writes refused, reads served"

kill "${pid[ro]}"
wait "${pid[ro]}" || true
unset 'pid[ro]'
nbd_start bad --listen "127.0.0.1:$port" --handshake-timeout 2000
python3 "$(dirname "$0")/nbd_bad_input.py" 127.0.0.1 "$port" small $((1 << 20)) ||
	fail "bad input (server log: $(tail -5 "$dir/bad.log"))"
kill -0 "${pid[bad]}" || fail "basalt-nbd died"
grep -q "closing the connection" "$dir/bad.log" || fail "no reason logged for closed connections"
echo PASS
