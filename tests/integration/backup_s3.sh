#!/usr/bin/env bash
# basalt backup against a real S3 server that checks signatures (radosgw,
# rgw_lib.sh) and a local Basalt cluster (3 monitors, 3 OSDs), volumes
# written and compared through basalt-nbd with qemu-img:
#  - a full backup restored to a new volume is byte-identical to the
#    snapshot, and its holes stay holes; the bucket's layout is plain S3
#    objects that awscli lists;
#  - an incremental after a 1% change sends the changed chunks only
#    (measured from the bucket); the third incremental of a chain restores;
#  - a clone backed up beside its parent sends (almost) nothing;
#  - erasure-coded: a volume of a 2+1 pool backed up and restored into
#    the replicated pool, and a backup restored into the 2+1 pool, are
#    byte-identical to their snapshots;
#  - encrypted: no object holds a known plaintext or the volume's name;
#    the key is needed (and the right one);
#  - prune keeps what retention says, its sweep deletes only unreferenced
#    chunks, and what it keeps still restores;
#  - wrong credentials, a missing bucket, a closed port, a certificate
#    from an unknown CA: one line each; TLS with --ca-file or --insecure;
#  - faults: radosgw killed mid-backup, then the same command again sends
#    only what was missing; a chunk corrupted and one deleted in the
#    bucket are named by verify --deep and stop a restore, which leaves
#    no volume behind; the snapshot removed mid-backup commits nothing.
#   backup_s3.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: backup_s3.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-backup.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/rgw_lib.sh"
cleanup() {
	{ [ -z "${bg:-}" ] || kill -9 "$bg" 2>/dev/null || true; }
	cluster_cleanup
	rgw_down
	rm -rf "$dir"
}
trap cleanup EXIT
M=1048576

rgw_up || fail "radosgw did not come up"
rgw_bucket backups || fail "cannot make the bucket"
volumes_up 2G vm=256M big=512M payroll-db=64M

# bk ARGS...: basalt --json backup ARGS, its JSON in $dir/out.json.
bk() { cli --json backup "$@" >"$dir/out.json" 2>"$dir/err" || fail "backup $*: $(cat "$dir/err")"; }
# field EXPR: a Python expression over j, the last bk's JSON.
field() { /usr/bin/python3 -c "import json; j=json.load(open('$dir/out.json')); print($1)"; }
# bucket_bytes PREFIX: bytes of every object under PREFIX, by awscli.
bucket_bytes() {
	rgw_aws s3 ls "s3://backups/$1" --recursive --summarize | awk '/Total Size:/ {print $3}'
}
bucket_count() {
	rgw_aws s3 ls "s3://backups/$1" --recursive --summarize | awk '/Total Objects:/ {print $3}'
}
# same NAME1 NAME2: the two exports read the same bytes.
same() {
	qemu-img compare -f raw -F raw "$uri/$1" "$uri/$2" >"$dir/cmp" 2>&1 ||
		fail "$1 and $2 differ: $(cat "$dir/cmp")"
}
# put FILE_OFFSET_MIB LEN_MIB VOLUME: random data into VOLUME at that offset.
put() {
	head -c $(($2 * M)) /dev/urandom >"$dir/rand"
	qemu-io -f raw "$uri/$3" -c "write -s $dir/rand $(($1 * M)) $(($2 * M))" >"$dir/qio" 2>&1 ||
		fail "qemu-io: $(cat "$dir/qio")"
}

echo "== full backup and restore"
put 0 20 vm
put 100 1 vm
put 255 1 vm
cli snap create vm@s1 >/dev/null
bk create vm@s1 --to s3://backups/prod
[ "$(field "j['incremental']")" = False ] || fail "the first backup is not full"
[ "$(field "j['chunks']")" = 7 ] || fail "expected 7 chunks (5 + 1 + 1), got $(field "j['chunks']")"
id1=$(field "j['id']")
rgw_aws s3 ls s3://backups/prod/ >"$dir/ls" || fail "awscli cannot list the bucket"
for k in basalt-backup.json chunks/ maps/ backups/; do
	grep -q "$k" "$dir/ls" || fail "awscli does not see prod/$k: $(cat "$dir/ls")"
done
[ "$(bucket_count prod/chunks/)" = 7 ] || fail "not 7 chunk objects in the bucket"
bk restore "$id1" --to r1 --repo s3://backups/prod
[ "$(field "j['created']")" = True ] || fail "restore did not make r1"
same vm@s1 r1
cli --json volume du r1 >"$dir/du.json"
stored=$(/usr/bin/python3 -c "import json; print(json.load(open('$dir/du.json'))['volumes'][0]['stored_bytes'])")
[ "$stored" -le $((22 * M)) ] || fail "r1 stores $stored bytes: holes were written"

echo "== incremental after a 1% change, and a chain"
before=$(bucket_bytes prod/chunks/)
put 8 2 vm # 2.56 MiB would be 1%: 2 MiB in one chunk
cli snap create vm@s2 >/dev/null
bk create vm@s2 --to s3://backups/prod
[ "$(field "j['incremental']")" = True ] || fail "the second backup is not incremental"
[ "$(field "j['parent']")" = "$id1" ] || fail "its parent is not the first"
[ "$(field "j['read_bytes']")" = $((4 * M)) ] || fail "it read $(field "j['read_bytes']") bytes, not one chunk"
sent=$(($(bucket_bytes prod/chunks/) - before))
echo "  1% change: the bucket grew by $sent bytes for one changed 4 MiB chunk"
[ "$sent" -le $((4 * M * 110 / 100)) ] && [ "$sent" -ge $((4 * M * 90 / 100)) ] ||
	fail "the bucket grew by $sent bytes, not one chunk's 4 MiB (within 10%)"
put 60 1 vm
cli snap create vm@s3 >/dev/null
bk create vm@s3 --to s3://backups/prod
put 200 3 vm
cli snap create vm@s4 >/dev/null
bk create vm@s4 --to s3://backups/prod
id4=$(field "j['id']")
bk restore "$id4" --to r4 --repo s3://backups/prod
same vm@s4 r4
bk verify "$id4" --deep --repo s3://backups/prod
[ "$(field "j['ok']")" = True ] || fail "verify --deep of a good backup found bad chunks"

echo "== a clone beside its parent"
cli snap protect vm@s4 >/dev/null
cli volume clone vm@s4 vmc >/dev/null
cli snap create vmc@c1 >/dev/null
bk create vmc@c1 --to s3://backups/prod
[ "$(field "j['chunks_uploaded']")" = 0 ] || fail "the clone's backup sent $(field "j['chunks_uploaded']") chunks"
echo "  clone of a $(field "j['data_bytes']")-byte volume: sent $(field "j['uploaded_bytes']") bytes"

echo "== an erasure-coded pool (2+1) on both ends"
cli pool create ec --ec 2+1 --pg-num 8 >/dev/null
wait_for "s['pgs'].get('active+clean')==24" 30 "the EC pool's PGs active+clean"
bk restore "$id4" --to r4ec --pool ec --repo s3://backups/prod
same vm@s4 r4ec
cli snap create r4ec@e1 >/dev/null
bk create r4ec@e1 --to s3://backups/ec
bk restore "$(field "j['id']")" --to r4rep --repo s3://backups/ec
same r4ec@e1 r4rep
echo "  restored into the 2+1 pool, backed up from it and restored out of it: identical"

echo "== encryption"
cli backup key create "$dir/key" >/dev/null || fail "backup key create"
cli backup key create "$dir/key" 2>"$dir/err" && fail "a key file was overwritten"
grep -q "never overwritten" "$dir/err" || fail "key create over a file: $(cat "$dir/err")"
printf 'KNOWN-PLAINTEXT-PATTERN-%.0s' $(seq 40000) >"$dir/plain"
qemu-io -f raw "$uri/payroll-db" -c "write -s $dir/plain $((30 * M)) 999424" >"$dir/qio" 2>&1 ||
	fail "qemu-io: $(cat "$dir/qio")"
put 0 4 payroll-db
cli snap create payroll-db@secret-snap >/dev/null
bk create payroll-db@secret-snap --to s3://backups/enc --key-file "$dir/key"
ide=$(field "j['id']")
rgw_aws s3 cp --recursive s3://backups/enc "$dir/enc" >/dev/null || fail "awscli cannot copy enc/"
grep -rl "KNOWN-PLAINTEXT" "$dir/enc" && fail "an encrypted object holds the plaintext"
grep -rlE "secret-snap|payroll-db" "$dir/enc" &&
	fail "an encrypted object holds the volume or snapshot name"
bk restore "$ide" --to renc --repo s3://backups/enc --key-file "$dir/key"
same payroll-db@secret-snap renc
cli backup ls --repo s3://backups/enc 2>"$dir/err" && fail "an encrypted repository listed without its key"
grep -q "key" "$dir/err" || fail "no key: $(cat "$dir/err")"
cli backup key create "$dir/key2" >/dev/null
cli backup ls --repo s3://backups/enc --key-file "$dir/key2" 2>"$dir/err" && fail "another key was accepted"
grep -q "not the one" "$dir/err" || fail "wrong key: $(cat "$dir/err")"

echo "== errors, one line each"
one_line() { # NAME COMMAND...: fails with exit status 1 and one line on stderr
	local name=$1 rc=0
	shift
	"$@" >/dev/null 2>"$dir/$name.err" || rc=$?
	[ "$rc" = 1 ] || fail "$name: exit status $rc: $(cat "$dir/$name.err")"
	[ "$(wc -l <"$dir/$name.err")" = 1 ] || fail "$name: not one line: $(cat "$dir/$name.err")"
	echo "  $name: $(cat "$dir/$name.err")"
}
AWS_SECRET_ACCESS_KEY=wrong one_line bad-secret cli backup ls --repo s3://backups/prod
grep -qiE "SignatureDoesNotMatch|credentials" "$dir/bad-secret.err" || fail "bad secret not named"
one_line no-bucket cli backup ls --repo s3://no-such-bucket/x
grep -qi "NoSuchBucket\|no such bucket" "$dir/no-bucket.err" || fail "missing bucket not named"
read -r closed < <(free_ports 1)
one_line unreachable timeout 60 "$build/basalt" -c "$dir/basalt.conf" backup ls \
	--repo s3://backups/prod --endpoint "http://127.0.0.1:$closed"
grep -qi "reach\|refused" "$dir/unreachable.err" || fail "unreachable endpoint not named"
# usage_line NAME PATTERN COMMAND...: exit status 2 (nothing done), one line naming PATTERN.
usage_line() {
	local name=$1 pattern=$2 rc=0
	shift 2
	"$@" >/dev/null 2>"$dir/$name.err" || rc=$?
	[ "$rc" = 2 ] || fail "$name: exit status $rc: $(cat "$dir/$name.err")"
	grep -q -- "$pattern" "$dir/$name.err" || fail "$name: $(cat "$dir/$name.err")"
}
usage_line no-repo "which repository" cli backup ls
env -u AWS_ENDPOINT_URL "$build/basalt" -c "$dir/basalt.conf" backup ls --repo s3://backups/prod \
	>/dev/null 2>"$dir/err" && fail "no endpoint was accepted"
grep -q "which S3 endpoint" "$dir/err" || fail "no endpoint: $(cat "$dir/err")"
env -u AWS_SECRET_ACCESS_KEY "$build/basalt" -c "$dir/basalt.conf" backup ls --repo s3://backups/prod \
	>/dev/null 2>"$dir/err" && fail "no secret key was accepted"
grep -q "no S3 credentials" "$dir/err" || fail "no credentials: $(cat "$dir/err")"
usage_line bad-url "bucket name" cli backup ls --repo s3://B
usage_line not-s3 "s3://" cli backup ls --repo http://backups/prod
usage_line bad-option "unknown option" cli backup ls --repo s3://backups/prod --bogus
usage_line prune-no-rule "--keep-" cli backup prune --repo s3://backups/prod
usage_line bad-keep "keep-last" cli backup prune --keep-last many --repo s3://backups/prod
usage_line bad-parallel "parallel" cli backup ls --parallel 0 --repo s3://backups/prod
one_line bad-id cli backup info ../../etc --repo s3://backups/prod
grep -q "not a backup id" "$dir/bad-id.err" || fail "bad id: $(cat "$dir/bad-id.err")"
one_line no-such-id cli backup info 20991231T000000Z-00000000 --repo s3://backups/prod
one_line no-repo-there cli backup ls --repo s3://backups/nothing-here
grep -q "no Basalt backups" "$dir/no-repo-there.err" || fail "empty prefix: $(cat "$dir/no-repo-there.err")"
one_line exists cli backup restore "$id1" --to r1 --repo s3://backups/prod
grep -q -- "--force" "$dir/exists.err" || fail "restore over a volume: $(cat "$dir/exists.err")"
one_line larger cli backup restore "$id1" --to big --force --repo s3://backups/prod
grep -q "larger than the backup" "$dir/larger.err" || fail "restore into a larger volume: $(cat "$dir/larger.err")"
one_line no-snap cli backup create vm@nope --to s3://backups/prod
grep -q "no snapshot" "$dir/no-snap.err" || fail "no snapshot: $(cat "$dir/no-snap.err")"
# Over an existing volume with --force: it becomes the backup (holes zeroed).
put 50 1 r1
bk restore "$id1" --to r1 --force --repo s3://backups/prod
[ "$(field "j['created']")" = False ] || fail "restore --force made a new volume"
same vm@s1 r1

echo "== TLS: verified by default"
one_line tls-unknown-ca cli backup ls --repo s3://backups/prod --endpoint "$RGW_TLS_ENDPOINT"
grep -qi "certificate\|TLS\|SSL" "$dir/tls-unknown-ca.err" || fail "an unknown CA not named: $(cat "$dir/tls-unknown-ca.err")"
bk ls --repo s3://backups/prod --endpoint "$RGW_TLS_ENDPOINT" --ca-file "$RGW_TLS_CA"
[ "$(field "len(j['backups'])")" -ge 4 ] || fail "ls over TLS with --ca-file"
bk ls --repo s3://backups/prod --endpoint "$RGW_TLS_ENDPOINT" --insecure
[ "$(field "len(j['backups'])")" -ge 4 ] || fail "ls over TLS with --insecure"
bk create vm@s4 --to s3://backups/prod --endpoint "$RGW_TLS_ENDPOINT" --ca-file "$RGW_TLS_CA"
[ "$(field "j['chunks_uploaded']")" = 0 ] || fail "the same snapshot over TLS sent chunks again"
bk rm "$(field "j['id']")" --repo s3://backups/prod

echo "== virtual-host style (BUCKET.localhost)"
bk ls --repo s3://backups/prod --endpoint "http://localhost:${RGW_ENDPOINT##*:}" --virtual-host
[ "$(field "len(j['backups'])")" -ge 4 ] || fail "ls in virtual-host style"

echo "== a corrupted and a deleted chunk"
bk info "$id1" --repo s3://backups/prod
[ "$(field "j['chunks']")" = 7 ] || fail "backup info does not say 7 chunks"
# The same snapshot in a prefix of its own, so the damage touches no other test's chunks.
bk create vm@s1 --to s3://backups/damage
idd=$(field "j['id']")
# Two of its chunks, from its map in the bucket.
rgw_aws s3 cp "s3://backups/damage/maps/$idd" "$dir/map" >/dev/null
ids=$(/usr/bin/python3 - "$dir/map" <<'PY'
import re, subprocess, sys
# A sealed map: a 16-byte header, then JSON, zstd-compressed when flags say so.
data = open(sys.argv[1], 'rb').read()
body = data[16:]
if data[8] & 1:
    body = subprocess.run(['zstd', '-d', '-c'], input=body, capture_output=True, check=True).stdout
print(' '.join(sorted(set(m.decode() for m in re.findall(rb'[0-9a-f]{64}', body)))))
PY
)
set -- $ids
[ $# -ge 2 ] || fail "cannot read the first backup's chunk ids from its map"
corrupt=$1 gone=$2
rgw_aws s3 cp "s3://backups/damage/chunks/$corrupt" "$dir/c" >/dev/null
/usr/bin/python3 -c "
d = bytearray(open('$dir/c', 'rb').read()); d[len(d) // 2] ^= 1; open('$dir/c', 'wb').write(d)"
rgw_aws s3 cp "$dir/c" "s3://backups/damage/chunks/$corrupt" >/dev/null
rgw_aws s3 cp "s3://backups/damage/chunks/$gone" "$dir/g" >/dev/null
rgw_aws s3 rm "s3://backups/damage/chunks/$gone" >/dev/null
cli backup verify "$idd" --deep --repo s3://backups/damage >"$dir/verify" 2>&1 && fail "verify --deep passed a damaged backup"
grep -q "BAD chunk $corrupt" "$dir/verify" || fail "verify --deep did not name the corrupted chunk: $(cat "$dir/verify")"
grep -q "BAD chunk $gone.*missing" "$dir/verify" || fail "verify --deep did not name the missing chunk: $(cat "$dir/verify")"
grep -q "volume bytes" "$dir/verify" || fail "verify does not say which volume bytes: $(cat "$dir/verify")"
cli backup restore "$idd" --to rbad --repo s3://backups/damage 2>"$dir/err" && fail "a damaged backup restored"
grep -q "chunk" "$dir/err" || fail "restore's refusal does not name the chunk: $(cat "$dir/err")"
cli volume info rbad >/dev/null 2>&1 && fail "the failed restore left volume rbad behind"
echo "  $(cat "$dir/err")"
# The missing one back: now the corrupted one stops the restore midway.
rgw_aws s3 cp "$dir/g" "s3://backups/damage/chunks/$gone" >/dev/null
cli backup restore "$idd" --to rbad --repo s3://backups/damage 2>"$dir/err" && fail "a corrupted chunk restored"
grep -q "chunk ${corrupt:0:16}" "$dir/err" || fail "restore does not name the corrupted chunk: $(cat "$dir/err")"
cli volume info rbad >/dev/null 2>&1 && fail "the failed restore left volume rbad behind"
echo "  $(cat "$dir/err")"

echo "== radosgw killed during a backup; the same command again sends what is missing"
put 0 200 big
cli snap create big@b1 >/dev/null
cli --json backup create big@b1 --to s3://backups/kill --parallel 2 >"$dir/kill1.json" 2>"$dir/kill1.err" &
bg=$!
for _ in $(seq 300); do
	n=$(bucket_count kill/chunks/ 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 3 ] && break
	sleep 0.1
done
rgw_gw_stop
rc=0
wait "$bg" || rc=$?
bg=
[ "$rc" != 0 ] || fail "the backup finished with radosgw killed (too fast to interrupt?)"
echo "  interrupted: $(cat "$dir/kill1.err")"
rgw_gw_start || fail "radosgw did not come back"
arrived=$(bucket_count kill/chunks/)
[ "$(bucket_count kill/backups/)" = 0 ] || fail "an interrupted backup was committed"
bk create big@b1 --to s3://backups/kill
[ "$(field "j['chunks_present']")" = "$arrived" ] ||
	fail "the rerun found $(field "j['chunks_present']") chunks there, $arrived had arrived"
[ "$(field "j['chunks_uploaded']")" = $((50 - arrived)) ] ||
	fail "the rerun sent $(field "j['chunks_uploaded']") chunks, not the $((50 - arrived)) missing"
echo "  $arrived chunks had arrived; the rerun sent the other $((50 - arrived))"

echo "== progress on a terminal only"
script -qfec "$build/basalt -c $dir/basalt.conf backup create big@b1 --to s3://backups/tty --parallel 1" \
	/dev/null >"$dir/tty.out" 2>&1 </dev/null || fail "backup on a terminal: $(cat "$dir/tty.out")"
grep -q "MiB/s.*s left" "$dir/tty.out" || fail "no progress line on a terminal: $(cat "$dir/tty.out")"
cli backup create big@b1 --to s3://backups/tty >"$dir/notty.out" 2>&1 || fail "backup: $(cat "$dir/notty.out")"
grep -q "MiB/s" "$dir/notty.out" && fail "a progress line without a terminal: $(cat "$dir/notty.out")"

echo "== the snapshot removed during a backup"
cli snap create big@b2 >/dev/null
before=$(bucket_count kill2/chunks/ 2>/dev/null || echo 0)
cli backup create big@b2 --to s3://backups/kill2 --parallel 1 >/dev/null 2>"$dir/rm.err" &
bg=$!
for _ in $(seq 300); do
	[ "$(bucket_count kill2/chunks/ 2>/dev/null || echo 0)" -ge 2 ] && break
	sleep 0.05
done
cli snap rm big@b2 >/dev/null
rc=0
wait "$bg" || rc=$?
bg=
[ "$rc" = 1 ] || fail "the backup of a removed snapshot ended with $rc: $(cat "$dir/rm.err")"
grep -q "removed while it was being backed up" "$dir/rm.err" || fail "not said: $(cat "$dir/rm.err")"
[ "$(bucket_count kill2/backups/)" = 0 ] || fail "a backup of a removed snapshot was committed"

echo "== prune"
cli --json backup ls vm --repo s3://backups/prod >"$dir/out.json"
[ "$(field "len(j['backups'])")" = 4 ] || fail "not 4 backups of vm: $(cat "$dir/out.json")"
keep=$(field "' '.join(b['id'] for b in j['backups'][-2:])")
bk prune --keep-last 2 --volume vm --repo s3://backups/prod --grace 0 --dry-run
[ "$(field "j['removed']")" = 2 ] || fail "the dry run would not remove 2"
[ "$(bucket_count prod/backups/)" = 5 ] || fail "the dry run removed something"
sleep 1 # chunks are compared with their mark in whole seconds
bk prune --keep-last 2 --volume vm --repo s3://backups/prod --grace 0
[ "$(field "j['removed']")" = 2 ] || fail "prune removed $(field "j['removed']"), not 2"
[ "$(bucket_count prod/backups/)" = 3 ] || fail "prune left $(bucket_count prod/backups/) backups, not 3 (vm's last 2, vmc's)"
cli --json backup ls --repo s3://backups/prod >"$dir/out.json"
[ "$(field "' '.join(b['id'] for b in j['backups'] if b['volume'] == 'vm')")" = "$keep" ] ||
	fail "prune kept other backups than the newest two"
chunks_before=$(bucket_count prod/chunks/)
sleep 1
bk prune --keep-last 2 --volume vm --repo s3://backups/prod --grace 0
deleted=$(field "j['chunks_deleted']")
[ "$deleted" -gt 0 ] || fail "the second prune deleted no chunk"
[ "$(bucket_count prod/chunks/)" = $((chunks_before - deleted)) ] || fail "the bucket does not show $deleted chunks gone"
echo "  prune: 2 backups removed, then $deleted unreferenced chunks deleted"
for id in $keep; do
	bk verify "$id" --deep --repo s3://backups/prod
	[ "$(field "j['ok']")" = True ] || fail "kept backup $id lost a chunk to prune"
done
cli volume rm r4 >/dev/null
bk restore "$id4" --to r4 --repo s3://backups/prod
same vm@s4 r4
echo "PASS"
