#!/usr/bin/env bash
# Client keys kept in the cluster map, against three real monitors:
# `basalt auth add` prints a key once; with it a client authenticates to
# any monitor; its caps decide what it may read and change, and a change
# of caps or removing the key takes effect; a wrong key or an unknown
# entity is told so at once; no secret is ever handed back.
#   mon_auth.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: mon_auth.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-mon-auth.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
cluster_conf_local
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"

as() { # as ENTITY KEYRING ARGS...: the CLI as another client
	local who=$1 kr=$2
	shift 2
	"$build/basalt" -c "$dir/basalt.conf" --name "$who" --keyring "$kr" --timeout 5 "$@"
}
expect_refusal() { # expect_refusal "TEXT" COMMAND...: fails, saying TEXT
	local want=$1
	shift
	if "$@" >"$dir/out" 2>"$dir/err"; then fail "'$*' succeeded; expected: $want"; fi
	grep -qF "$want" "$dir/err" || fail "'$*' said '$(cat "$dir/err")', expected '$want'"
}

cli auth add client.ro --caps mon=r >"$dir/ro.keyring" || fail "auth add"
grep -q '^\[client.ro\]$' "$dir/ro.keyring" && grep -q '^key = ' "$dir/ro.keyring" ||
	fail "auth add did not print a keyring section: $(cat "$dir/ro.keyring")"
expect_refusal "client.ro already has a key" cli auth add client.ro
expect_refusal "is not a client entity" cli auth add osd.9
expect_refusal "bad capability 'fs=rw'" cli auth add client.x --caps fs=rw
cli --json auth ls >"$dir/ls"
python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); assert k==[{"entity":"client.ro","caps":"mon=r"}], k' \
	"$dir/ls" || fail "auth ls: $(cat "$dir/ls")"
secret=$(sed -n 's/^key = //p' "$dir/ro.keyring")
! grep -rqF "$secret" "$dir/ls" || fail "auth ls shows the secret"
echo "client.ro added with mon=r; auth ls shows its caps and no secret"

# Reads from every monitor; no changes.
for m in a b c; do as client.ro "$dir/ro.keyring" --mon "$m" pool ls >/dev/null || fail "client.ro cannot read from mon.$m"; done
expect_refusal "client.ro may not change the cluster map (needs mon=rw)" \
	as client.ro "$dir/ro.keyring" pool create p1
cli auth caps client.ro mon=rw >/dev/null
as client.ro "$dir/ro.keyring" pool create p1 >/dev/null || fail "client.ro with mon=rw cannot create a pool"
cli auth caps client.ro osd=rw >/dev/null
expect_refusal "client.ro may not read the cluster map (needs mon=r)" \
	as client.ro "$dir/ro.keyring" pool ls
echo "caps enforced: mon=r reads, mon=rw changes, osd=rw alone neither"

# A wrong secret and an unknown entity are refused, and told so.
printf '[client.ro]\nkey = %s\n' "$(head -c 32 /dev/urandom | base64)" >"$dir/wrong.keyring"
expect_refusal "the monitors refused the key of client.ro" as client.ro "$dir/wrong.keyring" pool ls
printf '[client.nobody]\nkey = %s\n' "$secret" >"$dir/nobody.keyring"
# (A timeout would say "no monitor answered" instead.)
expect_refusal "the monitors refused the key of client.nobody" as client.nobody "$dir/nobody.keyring" pool ls
cli auth rm client.ro >/dev/null
for _ in $(seq 50); do # until every monitor has applied the removal
	as client.ro "$dir/ro.keyring" pool ls 2>&1 | grep -q "refused the key" && break
	sleep 0.1
done
expect_refusal "the monitors refused the key of client.ro" as client.ro "$dir/ro.keyring" pool ls
expect_refusal "client.ro has no key" cli auth rm client.ro
echo "wrong key, unknown entity and removed key: refused at once with the reason"
echo PASS
