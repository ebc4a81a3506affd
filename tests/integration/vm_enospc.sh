#!/usr/bin/env bash
# A VM pauses, not corrupts: a guest under qemu-system-x86_64 (TCG) writes
# with O_DIRECT through basalt-nbd into a full cluster; basalt-nbd answers
# ENOSPC, so qemu's werror=enospc stops the VM (query-status "io-error",
# BLOCK_IO_ERROR with nospace) before the guest sees any error — an EIO
# would reach the guest as a failed disk and qemu would not be paused. Then
# the filler volume is discarded, `cont` resumes the guest, its write
# completes and reads back (in the guest and here, through NBD) exactly.
# The guest (Debian's kernel out of its .deb, a busybox initramfs) is built
# once by guest/build.sh and cached, by default in /var/cache/basalt-test-guest
# (BASALT_GUEST_CACHE=DIR elsewhere; BUILD_DIR/guest-cache when that is not
# writable).
#   vm_enospc.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: vm_enospc.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/basalt-vmenospc.XXXXXX)
. "$here/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
t0=$(date +%s)
since() { echo $(($(date +%s) - $1)); }

command -v qemu-system-x86_64 >/dev/null || fail "no qemu-system-x86_64 (scripts/install-deps.sh)"
cache=${BASALT_GUEST_CACHE:-/var/cache/basalt-test-guest}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then cache=$build/guest-cache; fi
guest=$(timeout -k 5 300 "$here/guest/build.sh" "$cache") || fail "building the guest"
pattern_sha=$(cat "$guest/pattern.sha256")
echo "guest: $guest ($(cat "$guest/ok")), ready after $(since "$t0") s"

# 1. A cluster of 3 x 128M, a 64M volume for the guest's disk and a 1G one
# to fill it with.
cluster_up_local 128M
cli pool create rbd --size 3 --pg-num 32 >/dev/null
cli volume create vmdisk --size 64M >/dev/null
cli volume create filler --size 1G >/dev/null
wait_for "s['pgs'].get('active+clean')==32" 30 "PGs active+clean"
nbd_start

# 2. Fill the cluster until it refuses writes with ENOSPC.
timeout -k 5 120 "$here/nbd_tagged.py" fill "$uri/filler" "$dir/filler.acked" --seconds 90 \
	>"$dir/fill.json" || fail "filling did not end on ENOSPC: $(cat "$dir/fill.json")"
python3 - "$dir/fill.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["enospc"] > 0 and r["other_errors"] == 0, r
print(f'cluster filled: {r["acked"]} 4 KiB writes, then ENOSPC after {r["seconds_to_enospc"]:.1f} s')
PY
wait_for "all(p['full'] for p in s['pool_usage'])" 20 "pool rbd shown full"

# 3. The guest: qemu starts stopped (-S) so qmp.py sees every event from the
# first instruction; the disk is vmdisk through basalt-nbd, werror=enospc
# said explicitly (it is -drive's default), read errors reported.
qemu-system-x86_64 -S -machine pc,accel=tcg -m 256 -smp 1 -nodefaults -display none -no-reboot \
	-kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet" \
	-serial "file:$dir/console.log" \
	-qmp "unix:$dir/qmp.sock,server=on,wait=off" \
	-drive "file=$uri/vmdisk,format=raw,if=virtio,cache=none,werror=enospc,rerror=report" \
	>"$dir/qemu.log" 2>&1 &
pid[qemu]=$!

# 4. The guest boots and writes; the VM must stop on the ENOSPC, with the
# guest's dd still waiting: it has not seen an error, nor finished.
timeout -k 5 150 python3 "$here/guest/qmp.py" watch "$dir/qmp.sock" 120 >"$dir/watch.json" ||
	fail "the VM did not stop with io-error on ENOSPC: $(cat "$dir/watch.json")"
paused_at=$(date +%s)
grep -q "^WRITE-START" "$dir/console.log" || fail "the VM stopped before the guest's write"
if grep -E "^(WRITE-DONE|WRITE-FAILED|VERIFY)" "$dir/console.log"; then
	fail "the guest saw its write end while the VM was stopped"
fi
python3 - "$dir/watch.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = [e for e in r["events"] if e["event"] == "BLOCK_IO_ERROR"][0]
print(f'VM stopped {r["seconds"]} s after start: status io-error, BLOCK_IO_ERROR '
      f'{e["operation"]} "{e["reason"]}" action {e["action"]}')
PY

# 5. Free the space: the VM must still be in io-error when `cont` comes
# (qmp.py cont checks), then its write completes and it powers off.
qemu-io -d unmap -f raw -c 'discard 0 1G' "$uri/filler" >/dev/null || fail "discarding the filler"
wait_for "not any(p['full'] for p in s['pool_usage']) and s['health'] == 'OK'" 30 \
	"space back after the discard"
echo "filler discarded, cluster healthy again; VM paused for $(since "$paused_at") s so far"
timeout -k 5 150 python3 "$here/guest/qmp.py" cont "$dir/qmp.sock" 120 >"$dir/cont.json" ||
	fail "after cont the guest did not run to its end: $(cat "$dir/cont.json")"
for _ in $(seq 150); do kill -0 "${pid[qemu]}" 2>/dev/null || break; sleep 0.2; done
kill -0 "${pid[qemu]}" 2>/dev/null && fail "qemu still running 30 s after the guest powered off"
rc=0
wait "${pid[qemu]}" || rc=$?
unset 'pid[qemu]'
[ "$rc" = 0 ] || fail "qemu exited with $rc: $(tail -3 "$dir/qemu.log")"

# 6. The guest's write went through and reads back; here too, through NBD.
got=$(sed -n 's/^VERIFY-OK \([0-9a-f]*\).*/\1/p' "$dir/console.log")
[ -n "$got" ] || fail "no VERIFY-OK from the guest: $(grep -E '^(WRITE|VERIFY|GUEST)' "$dir/console.log")"
[ "$got" = "$pattern_sha" ] || fail "the guest read back $got, wrote $pattern_sha"
host=$(/usr/bin/python3 - "$uri/vmdisk" <<'PY'
import hashlib, sys
import nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
print(hashlib.sha256(h.pread(4 << 20, 16 << 20)).hexdigest())
h.shutdown()
PY
) || fail "reading vmdisk back through NBD"
[ "$host" = "$pattern_sha" ] || fail "vmdisk holds $host at 16 MiB, the guest wrote $pattern_sha"
python3 - "$dir/cont.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'after cont: the write completed and the guest powered off in {r["seconds"]} s')
PY
echo "4 MiB at 16 MiB verified in the guest and through NBD: sha256 $pattern_sha"
echo "total $(since "$t0") s"
echo PASS
