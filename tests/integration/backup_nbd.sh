#!/usr/bin/env bash
# basalt-nbd serving backups in place (export backup:ID) from a real S3
# server (radosgw, rgw_lib.sh), a volume holding an ext4 file system made
# by mke2fs -d and backed up with basalt backup:
#  - qemu-img compare of backup:ID against VOL@SNAP: identical, read
#    through a cache of two chunks for a volume of six (eviction; the
#    server's log says it never held more than 8 MiB);
#  - nbdinfo: read-only, the backup's size; qemu-img map: the chunk the
#    backup lacks is a hole; qemu-io's write is refused, and a write
#    libnbd sends anyway is answered EPERM;
#  - nbdfuse + mount -o loop,ro: a file's exact bytes, read in place;
#  - an unknown backup:ID is refused at GO with a message; a server with
#    no repository says so; bad repository settings stop it at start;
#  - an encrypted repository served with --backup-key-file.
#   backup_nbd.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: backup_nbd.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-backup-nbd.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/rgw_lib.sh"
fuse=$dir/fuse
mnt=$dir/mnt
mkdir -p "$fuse" "$mnt"
cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	mountpoint -q "$fuse" && { fusermount3 -u "$fuse" 2>/dev/null || umount -l "$fuse"; }
	cluster_cleanup
	rgw_down
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in nbdinfo nbdfuse qemu-img qemu-io mke2fs fusermount3; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done
M=1048576

rgw_up || fail "radosgw did not come up"
rgw_bucket backups || fail "cannot make the bucket"
volumes_up 1G vm=24M
plain_uri=$uri

echo "== an ext4 volume backed up"
mkdir -p "$dir/tree/docs"
head -c $((12 * M + 123)) /dev/urandom >"$dir/tree/docs/report.bin"
echo "in place, not restored" >"$dir/tree/hello.txt"
# 20 MiB of file system in a 24 MiB volume: its last chunk is never written.
mke2fs -q -t ext4 -d "$dir/tree" "$dir/fs.img" 20M || fail "mke2fs -d"
qemu-img convert -n -f raw -O raw "$dir/fs.img" "$uri/vm" 2>"$dir/conv" ||
	fail "qemu-img convert: $(cat "$dir/conv")"
cli snap create vm@s1 >/dev/null
cli --json backup create vm@s1 --to s3://backups/plain >"$dir/out.json" 2>"$dir/err" ||
	fail "backup create: $(cat "$dir/err")"
id=$(/usr/bin/python3 -c "import json; print(json.load(open('$dir/out.json'))['id'])")
cli backup key create "$dir/key" >/dev/null
cli --json backup create vm@s1 --to s3://backups/enc --key-file "$dir/key" >"$dir/out.json" \
	2>"$dir/err" || fail "encrypted backup create: $(cat "$dir/err")"
id_enc=$(/usr/bin/python3 -c "import json; print(json.load(open('$dir/out.json'))['id'])")

echo "== a server without a repository"
qemu-img info "$uri/backup:$id" >"$dir/info" 2>&1 && fail "backup:ID served with no repository"
grep -q "no backup repository configured (--backup-repo)" "$dir/info" ||
	fail "no repository: not said: $(cat "$dir/info")"

echo "== repository settings refused at start"
"$build/basalt-nbd" -c "$dir/basalt.conf" --backup-repo http://backups/plain >"$dir/bad" 2>&1 &&
	fail "basalt-nbd took --backup-repo http://"
grep -q "s3://" "$dir/bad" || fail "a bad --backup-repo not explained: $(cat "$dir/bad")"
env -u AWS_ENDPOINT_URL "$build/basalt-nbd" -c "$dir/basalt.conf" \
	--backup-repo s3://backups/plain >"$dir/bad" 2>&1 && fail "basalt-nbd ran with no endpoint"
grep -q "give --backup-endpoint URL" "$dir/bad" || fail "no endpoint: $(cat "$dir/bad")"

# backup_server ARGS...: basalt-nbd serving backups (pid[nbd.backup]),
# its address in $buri; stops the one before.
backup_server() {
	if [ -n "${pid[nbd.backup]:-}" ]; then
		kill "${pid[nbd.backup]}"
		wait "${pid[nbd.backup]}" || true
	fi
	local port
	read -r port < <(free_ports 1)
	"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd-backup.log" \
		--listen "127.0.0.1:$port" "$@" &
	pid[nbd.backup]=$!
	for _ in $(seq 50); do
		grep -q "listening on 127.0.0.1:$port" "$dir/nbd-backup.log" 2>/dev/null && break
		sleep 0.1
	done
	buri=nbd://127.0.0.1:$port
}

echo "== backup:$id through a cache of two chunks"
backup_server --backup-repo s3://backups/plain --backup-endpoint "$RGW_ENDPOINT" \
	--backup-cache 8M
qemu-img compare -f raw -F raw "$buri/backup:$id" "$plain_uri/vm@s1" >"$dir/cmp" 2>&1 ||
	fail "backup:$id differs from vm@s1: $(cat "$dir/cmp")"
grep "nbd: backup $id closed" "$dir/nbd-backup.log" | tail -1 >"$dir/stats"
/usr/bin/python3 - "$dir/stats" <<'PY' || fail "cache figures: $(cat "$dir/stats")"
import re, sys
line = open(sys.argv[1]).read()
m = re.search(r"(\d+) fetches \((\d+) failed\).* (\d+) evictions, at most (\d+) bytes", line)
fetches, failed, evictions, held = map(int, m.groups())
assert fetches >= 4 and failed == 0, line
assert evictions >= 2, line          # more chunks than room for two
assert held <= 8 << 20, line
PY

nbdinfo "$buri/backup:$id" >"$dir/nbdinfo" 2>&1 || fail "nbdinfo: $(cat "$dir/nbdinfo")"
grep -q "export-size: $((24 * M))" "$dir/nbdinfo" || fail "size: $(cat "$dir/nbdinfo")"
grep -q "is_read_only: true" "$dir/nbdinfo" || fail "not read-only: $(cat "$dir/nbdinfo")"
qemu-img map --output=json -f raw "$buri/backup:$id" >"$dir/map" || fail "qemu-img map"
/usr/bin/python3 - "$dir/map" $((20 * M)) <<'PY' || fail "map: $(cat "$dir/map")"
import json, sys
start = int(sys.argv[2])
for e in json.load(open(sys.argv[1])):
    if e["start"] + e["length"] > start:
        assert not e["data"] and e["zero"], e   # the chunk never written
PY

qemu-io -f raw "$buri/backup:$id" -c "write -P 0x55 0 4096" >"$dir/qio" 2>&1 || true
grep -qi "read-only\|not permitted\|permission" "$dir/qio" || fail "qemu-io wrote: $(cat "$dir/qio")"
/usr/bin/python3 - "$buri/backup:$id" <<'PY' 2>"$dir/py" || fail "a write sent anyway: $(cat "$dir/py")"
import errno, sys
import nbd
h = nbd.NBD()
h.set_strict_mode(0)          # send it although the export says read-only
h.connect_uri(sys.argv[1])
try:
    h.pwrite(b"x" * 4096, 0)
except nbd.Error as e:
    if e.errno == errno.EPERM or "(EPERM)" in str(e):
        sys.exit(0)
    sys.exit("refused, but not with EPERM: %s" % e)
sys.exit("the write was accepted")
PY
qemu-img compare -f raw -F raw "$buri/backup:$id" "$plain_uri/vm@s1" >/dev/null 2>&1 ||
	fail "the backup export changed"

echo "== a file read in place: nbdfuse + mount -o loop,ro"
nbdfuse -r "$fuse/disk" "$buri/backup:$id" &
pid[nbdfuse]=$!
for _ in $(seq 50); do [ -e "$fuse/disk" ] && break; sleep 0.1; done
[ -e "$fuse/disk" ] || fail "nbdfuse did not expose the export"
timeout 30 mount -o loop,ro "$fuse/disk" "$mnt" || fail "mount -o loop,ro"
cmp "$mnt/docs/report.bin" "$dir/tree/docs/report.bin" || fail "report.bin read back differs"
[ "$(cat "$mnt/hello.txt")" = "in place, not restored" ] || fail "hello.txt differs"
umount "$mnt"
fusermount3 -u "$fuse"
wait "${pid[nbdfuse]}" || true

echo "== an unknown backup"
qemu-img info "$buri/backup:20990101T000000Z-00000000" >"$dir/info" 2>&1 &&
	fail "an unknown backup was served"
grep -q "no backup 20990101T000000Z-00000000" "$dir/info" ||
	fail "unknown backup not named: $(cat "$dir/info")"

echo "== an encrypted repository"
backup_server --backup-repo s3://backups/enc --backup-key-file "$dir/key" --backup-cache 8M
qemu-img compare -f raw -F raw "$buri/backup:$id_enc" "$plain_uri/vm@s1" >"$dir/cmp" 2>&1 ||
	fail "encrypted backup:$id_enc differs from vm@s1: $(cat "$dir/cmp")"
backup_server --backup-repo s3://backups/enc
qemu-img info "$buri/backup:$id_enc" >"$dir/info" 2>&1 && fail "served without its key"
grep -qi "key" "$dir/info" || fail "the missing key not said: $(cat "$dir/info")"
echo PASS
