#!/usr/bin/env bash
# The S3 client (common/s3.h) against a real radosgw (rgw_lib.sh), through
# s3_tool: byte-exact round trips (binary, empty, odd keys), HEAD present
# and absent, delete, listing across pages, objects seen the same by
# awscli, virtual-host style, refusals named in one line (bad signature,
# missing bucket, closed port) and a put that outlives radosgw killed and
# restarted. Stops exactly the daemons it started.
set -euo pipefail
tool=${1:?usage: s3_client.sh PATH/TO/s3_tool}
dir=$(mktemp -d /tmp/basalt-s3-test.XXXXXX)
source "$(dirname "$0")/rgw_lib.sh"

cleanup() {
	rgw_down
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$dir"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }; done
	rgw_logs
	exit 1
}

s3() { timeout 120 "$tool" "$@"; }
bucket=basalt-test
url=s3://$bucket

# One line on stderr holding every one of PATTERNS, exit status STATUS.
# expect_refusal NAME STATUS PATTERN... -- COMMAND...
expect_refusal() {
	local name=$1 status=$2 patterns=() rc=0
	shift 2
	while [ "$1" != -- ]; do patterns+=("$1"); shift; done
	shift
	"$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
	[ "$rc" = "$status" ] || fail "$name: exit status $rc, expected $status"
	[ "$(wc -l <"$dir/$name.err")" = 1 ] || fail "$name: not one line: $(cat "$dir/$name.err")"
	for p in "${patterns[@]}"; do
		grep -q -- "$p" "$dir/$name.err" || fail "$name: '$p' missing in: $(cat "$dir/$name.err")"
	done
	echo "ok: $name: $(cat "$dir/$name.err")"
}

start=$(date +%s.%N)
rgw_up || fail "radosgw did not come up"
echo "rgw_up took $(echo "$(date +%s.%N) - $start" | bc) s"
rgw_bucket "$bucket" || fail "create-bucket"

# Round trips: 3 MiB of random bytes, an empty object, a key full of
# characters that need encoding.
head -c 3145728 /dev/urandom >"$dir/blob"
s3 put "$url/dir/blob.bin" "$dir/blob" || fail "put"
s3 get "$url/dir/blob.bin" "$dir/blob.back" || fail "get"
cmp "$dir/blob" "$dir/blob.back" || fail "get: different bytes"
[ "$(s3 head "$url/dir/blob.bin")" = 3145728 ] || fail "head: wrong size"
: >"$dir/empty"
s3 put "$url/empty" "$dir/empty" || fail "put of 0 bytes"
[ "$(s3 head "$url/empty")" = 0 ] || fail "head of the empty object"
echo junk >"$dir/empty.back"
s3 get "$url/empty" "$dir/empty.back" || fail "get of 0 bytes"
[ ! -s "$dir/empty.back" ] || fail "get of 0 bytes: not empty"
odd='odd/a b+c%d&e=f?g#h~i;j,k(l)é!$'
printf 'odd key' >"$dir/odd"
s3 put "$url/$odd" "$dir/odd" || fail "put of an odd key"
[ "$(s3 get "$url/$odd" -)" = "odd key" ] || fail "get of an odd key"
[ "$(s3 ls "$url/odd/" | sed 's/ [0-9]*$//')" = "odd/a b+c%d&e=f?g#h~i;j,k(l)é!$ 7" ] ||
	fail "ls of an odd key: $(s3 ls "$url/odd/")"
echo "ok: round trips (3 MiB binary, 0 bytes, an odd key)"

# HEAD absent, delete, delete of a key already gone.
expect_refusal head_absent 1 NoSuchKey "$url/nothing" -- s3 head "$url/nothing"
expect_refusal get_absent 1 NoSuchKey -- s3 get "$url/nothing" "$dir/nothing"
s3 rm "$url/empty" || fail "rm"
expect_refusal head_deleted 1 NoSuchKey -- s3 head "$url/empty"
s3 rm "$url/empty" || fail "rm of a key already gone"
echo "ok: head, rm"

# Listing across pages: 25 keys, 10 a page, in byte order with their sizes;
# 3 requests (pages), and a prefix that matches nothing.
for i in $(seq 1 25); do
	head -c "$i" /dev/urandom >"$dir/p"
	s3 put "$url/page/k$i" "$dir/p" || fail "put page/k$i"
	echo "page/k$i $i"
done | LC_ALL=C sort >"$dir/ls.want"
s3 --page-keys 10 --stats ls "$url/page/" >"$dir/ls.got" 2>"$dir/ls.err" || fail "ls"
cut -d' ' -f1,2 "$dir/ls.got" | diff "$dir/ls.want" - || fail "ls: wrong keys, order or sizes"
grep -q 'requests=3 retries=0 connections=1 ' "$dir/ls.err" ||
	fail "ls: not 3 pages on one connection: $(cat "$dir/ls.err")"
now=$(date +%s)
awk -v now="$now" '$3 < now - 600 || $3 > now + 600 { exit 1 }' "$dir/ls.got" ||
	fail "ls: modification times far from now"
[ -z "$(s3 ls "$url/none/")" ] || fail "ls of an empty prefix"
echo "ok: ls of 25 keys in 3 pages on one connection"

# The same bytes for awscli, both ways.
rgw_aws s3api get-object --bucket "$bucket" --key dir/blob.bin "$dir/blob.aws" >/dev/null ||
	fail "awscli get-object"
cmp "$dir/blob" "$dir/blob.aws" || fail "awscli reads different bytes"
rgw_aws s3api put-object --bucket "$bucket" --key from-aws --body "$dir/odd" >/dev/null ||
	fail "awscli put-object"
[ "$(s3 get "$url/from-aws" -)" = "odd key" ] || fail "get of what awscli put"
echo "ok: awscli agrees"

# Virtual-host style: BUCKET.localhost resolves to loopback in curl.
vhost=(--virtual-host --endpoint "http://localhost:${RGW_ENDPOINT##*:}")
s3 "${vhost[@]}" put "$url/vhost" "$dir/odd" || fail "put, virtual-host style"
[ "$(s3 "${vhost[@]}" get "$url/vhost" -)" = "odd key" ] || fail "get, virtual-host style"
[ "$(s3 "${vhost[@]}" --page-keys 10 ls "$url/page/" | wc -l)" = 25 ] ||
	fail "ls, virtual-host style"
echo "ok: virtual-host style"

# Refusals, each one line.
AWS_SECRET_ACCESS_KEY=wrong-secret expect_refusal bad_secret 3 SignatureDoesNotMatch \
	"$RGW_ENDPOINT" "$url/dir/blob.bin" -- s3 put "$url/dir/blob.bin" "$dir/odd"
AWS_ACCESS_KEY_ID=AKIANOSUCHKEY000000 expect_refusal bad_key 3 InvalidAccessKeyId -- \
	s3 get "$url/dir/blob.bin" "$dir/x"
expect_refusal no_bucket_get 3 NoSuchBucket s3://no-such-bucket/k -- s3 get s3://no-such-bucket/k "$dir/x"
expect_refusal no_bucket_head 3 NoSuchBucket -- s3 head s3://no-such-bucket/k
expect_refusal no_bucket_ls 3 NoSuchBucket -- s3 ls s3://no-such-bucket/
closed=$("$(dirname "$0")/../../scripts/free-ports" 1)
t0=$(date +%s)
expect_refusal closed_port 3 "cannot reach http://127.0.0.1:$closed" "connection refused" \
	"after 5 retries" -- s3 --endpoint "http://127.0.0.1:$closed" put "$url/k" "$dir/odd"
[ $(($(date +%s) - t0)) -le 15 ] || fail "closed port: took more than 15 s"
cmp "$dir/blob" <(s3 get "$url/dir/blob.bin" -) || fail "a refused put changed the object"
# https to a plain-HTTP port: a TLS failure, not retried.
expect_refusal tls 3 "https://127.0.0.1:${RGW_ENDPOINT##*:}" -- \
	s3 --endpoint "https://127.0.0.1:${RGW_ENDPOINT##*:}" head "$url/dir/blob.bin"
grep -q retr "$dir/tls.err" && fail "tls: retried"

# radosgw killed just before a put and back a second later: the put
# retries until it answers.
head -c 33554432 /dev/urandom >"$dir/big"
rgw_gw_stop
s3 --stats --retries 8 put "$url/big" "$dir/big" 2>"$dir/put_restart.err" &
put=$!
sleep 1
rgw_gw_start || fail "radosgw did not come back"
wait "$put" || fail "put across a radosgw restart: $(cat "$dir/put_restart.err")"
grep -Eq 'retries=[1-9]' "$dir/put_restart.err" || fail "put across a restart: no retry seen"
s3 get "$url/big" "$dir/big.back" && cmp "$dir/big" "$dir/big.back" || fail "big: different bytes"
echo "ok: put across a restart: $(cat "$dir/put_restart.err")"

# radosgw killed while a 64 MiB put is (most likely) being sent.
head -c 67108864 /dev/urandom >"$dir/bigger"
s3 --stats --retries 8 put "$url/bigger" "$dir/bigger" 2>"$dir/put_inflight.err" &
put=$!
sleep 0.3
rgw_gw_stop
sleep 1
rgw_gw_start || fail "radosgw did not come back"
wait "$put" || fail "put with radosgw killed in flight: $(cat "$dir/put_inflight.err")"
s3 get "$url/bigger" "$dir/bigger.back" && cmp "$dir/bigger" "$dir/bigger.back" ||
	fail "bigger: different bytes"
echo "ok: put with radosgw killed in flight: $(cat "$dir/put_inflight.err")"
echo PASS
