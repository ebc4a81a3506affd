#!/usr/bin/env bash
# What an operator meets at the command line when something is wrong:
# a monitor port that refuses connections is named within seconds (not
# after the 30 s timeout), a missing keyring and a config that is a
# directory or not a config say so, --timeout 0|abc and malformed sizes
# are refused with the reason (one size grammar: 1.5G and 1E taken, ' 10G',
# '10 G', 0 and overflow refused), every program has --version, help goes
# to the command asked about, and exit statuses are 2 for a usage error,
# 1 for a failure, 0 for success.
#   cli_errors.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: cli_errors.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-cli-errors.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT

# expect RC "TEXT" COMMAND...: exits RC and says TEXT on stderr (or stdout
# for RC 0).
expect() {
	local want_rc=$1 want=$2 rc=0
	shift 2
	"$@" >"$dir/out" 2>"$dir/err" || rc=$?
	[ "$rc" -eq "$want_rc" ] || fail "'$*' exited $rc, expected $want_rc: $(cat "$dir/err")"
	grep -qF -- "$want" "$dir/out" "$dir/err" ||
		fail "'$*' said '$(cat "$dir/out" "$dir/err")', expected '$want'"
}

# --- --version, help and usage errors: no cluster needed ---
version=$(sed -n 's/^project(basalt VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "no project(VERSION) in CMakeLists.txt"
for p in basalt basalt-nbd basalt-fuse basalt-docker basalt-mon basalt-osd; do
	out=$("$build/$p" --version) || fail "$p --version exited $?"
	[ "$out" = "$p $version" ] || fail "$p --version said '$out', expected '$p $version'"
done
echo "--version: every program says $version"

expect 0 "commands:" "$build/basalt" help
expect 0 "volume create NAME" "$build/basalt" help volume
! grep -q "pool create" "$dir/out" || fail "basalt help volume shows pool commands"
grep -qF "SIZE: a size is digits" "$dir/out" || fail "basalt help volume does not say what a size is"
expect 0 "volume resize NAME SIZE" "$build/basalt" volume --help
! grep -q "pool create" "$dir/out" || fail "basalt volume --help shows pool commands"
expect 0 "status " "$build/basalt" status --help
! grep -q "volume create" "$dir/out" || fail "basalt status --help shows volume commands"
expect 0 "pool set NAME max_bytes SIZE" "$build/basalt" pool create x --help
expect 2 "no command 'nope'" "$build/basalt" help nope
expect 2 "usage: basalt" "$build/basalt"
expect 2 "usage: basalt" "$build/basalt" --no-such-option status
echo "help: basalt help [COMMAND] and COMMAND --help print that command's entries"

for t in 0 abc 5s -1 86401 ""; do
	expect 2 "--timeout (seconds)" "$build/basalt" --timeout "$t" status
done
echo "--timeout 0, abc, 5s, -1, 86401 and '' refused (exit 2)"

for p in basalt-nbd basalt-fuse basalt-docker basalt-mon basalt-osd; do
	expect 2 "usage: $p" "$build/$p" --no-such-option
done
expect 2 "--id NAME is required" "$build/basalt-mon" -c "$dir/none.conf"
expect 2 "--size: '1.5' is not a size" "$build/basalt-osd" --mkfs --device "$dir/dev" --size 1.5
expect 2 "it has spaces" "$build/basalt-osd" --mkfs --device "$dir/dev" --size "10 G"
expect 3 "cannot open $dir/dev" "$build/basalt-osd" --fsck --device "$dir/dev"
expect 1 "cannot open $dir/dev" "$build/basalt-osd" --dump --device "$dir/dev"
echo "daemons: unknown options and bad sizes exit 2; a store that cannot be read 1 (--fsck: 3)"
expect 2 "store_bench: --size: '1 G' is not a size: it has spaces" \
	"$build/bench/store_bench" --device "$dir/dev" --size "1 G"
expect 2 "volume_load: --bs: '4.5' is not a size" "$build/bench/volume_load" --bs 4.5
expect 2 "objects: --bs: '4Q' is not a size: unknown suffix" "$build/bench/objects" --bs 4Q
echo "bench tools: bad sizes exit 2 with the reason"

# --- files that are wrong ---
read -r port mport < <(free_ports 2)
cluster_conf "a=127.0.0.1:$port" # nothing listens on $port
expect 1 "cannot open the config /tmp: Is a directory" "$build/basalt" -c /tmp status
expect 1 "/etc/passwd:1: " "$build/basalt" -c /etc/passwd status
grep -qF "before any [section]" "$dir/err" || fail "-c /etc/passwd: $(cat "$dir/err")"
expect 1 "cannot open the config /tmp: Is a directory" "$build/basalt-mon" --id a -c /tmp
expect 1 "cannot open the keyring $dir/no.keyring: No such file or directory" \
	cli --keyring "$dir/no.keyring" status
expect 1 "cannot open the keyring /tmp: Is a directory" cli --keyring /tmp status
echo "config and keyring errors name the file and what is wrong with it"

# --- a monitor port that refuses connections ---
for args in "status" "pool create p" "object stat rbd 1:0"; do
	start=$(date +%s%N)
	# shellcheck disable=SC2086
	expect 1 "mon.a 127.0.0.1:$port: Connection refused" cli $args
	ms=$((($(date +%s%N) - start) / 1000000))
	[ "$ms" -lt 10000 ] || fail "'basalt $args' took $ms ms to report a refused port"
	echo "basalt $args: '$(cat "$dir/err")' after $ms ms"
done

# --- sizes, through a real monitor ---
cp "$dir/basalt.conf" "$dir/dead.conf"
cluster_conf "a=127.0.0.1:$mport"
mon_mkfs_all a
mon_start a
leader >/dev/null || fail "no leader"
cli pool create rbd --pg-num 8 >/dev/null || fail "pool create"
vol_size() { cli --json volume info "$1" 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d[0] if isinstance(d, list) else d)["size"])'; }
expect 0 "done" cli volume create v15 --size 1.5G
[ "$(vol_size v15)" = 1610612736 ] || fail "1.5G made $(vol_size v15) bytes"
expect 0 "done" cli volume create v1e --size 1E
expect 0 "done" cli volume create vt --size 1048576T
[ "$(vol_size v1e)" = "$(vol_size vt)" ] && [ "$(vol_size vt)" = 1152921504606846976 ] ||
	fail "1E is $(vol_size v1e) bytes, 1048576T $(vol_size vt)"
expect 2 "--size must be greater than 0" cli volume create v0 --size 0
expect 2 "--size: ' 10G' is not a size: it has spaces" cli volume create v --size " 10G"
expect 2 "--size: '10 G' is not a size: it has spaces" cli volume create v --size "10 G"
expect 2 "--size: '16E' is not a size: it is too large" cli volume create v --size 16E
expect 2 "is not a size: it is too large" cli volume create v --size 99999999999999999999999
expect 2 "--size must be at most 1 EiB, not 2E" cli volume create v --size 2E
expect 2 "the fraction does not make a whole number of bytes" cli volume create v --size 1.5
expect 2 "no spaces, a fraction only where it makes whole bytes, at most 8 EiB - 1" \
	cli volume create v --size 10X
expect 2 "the new size: '1.5' is not a size" cli volume resize v15 1.5
expect 2 "the new size must be greater than 0" cli volume resize v15 0
expect 0 "done" cli volume resize v15 2.5G
[ "$(vol_size v15)" = 2684354560 ] || fail "resize 2.5G made $(vol_size v15) bytes"
expect 2 "max_bytes (0 for no quota): '10 G' is not a size" cli pool set rbd max_bytes "10 G"
expect 0 "done" cli pool set rbd max_bytes 1.5T
expect 2 "pg_num takes a whole number from 0 to 4294967295, not '8x'" cli pool set rbd pg_num 8x
expect 2 "size must be from 0 to 4294967295, not 99999999999" cli pool set rbd size 99999999999
expect 2 "--block-size: '64 K' is not a size" cli pool create p2 --block-size "64 K"
expect 2 "--size (copies) takes a whole number from 0 to 4294967295, not '1G'" \
	cli pool create p2 --size 1G
expect 2 "--pg-num takes a whole number" cli pool create p2 --pg-num 1.5
echo "sizes: 1.5G, 1E = 1048576T, 2.5G taken; 0, ' 10G', '10 G', 16E, 2E, 1.5, 10X refused (exit 2)"

# --- a monitor that is up but does not answer, and one without quorum ---
kill -STOP "${pid[mon.a]}"
expect 1 "no monitor answered: mon.a 127.0.0.1:$mport: " cli --timeout 3 status
grep -Eq "no connection within 0.5 s|connected, no reply within 2 s" "$dir/err" ||
	fail "a frozen monitor: $(cat "$dir/err")"
expect 1 "no monitor sent the cluster map: mon.a 127.0.0.1:$mport: " cli --timeout 3 object stat rbd 1:0
kill -CONT "${pid[mon.a]}"
leader >/dev/null || fail "no leader after SIGCONT"
echo "a frozen monitor: '$(cat "$dir/err")'"

# --- exit statuses: usage 2, failure 1 ---
expect 2 "unknown command 'frobnicate'" cli frobnicate
expect 2 "usage: basalt volume" cli volume
expect 2 "usage: basalt pool create" cli pool create
expect 2 "expected an object as INODE:INDEX" cli object stat rbd nonsense
expect 1 "does not exist" cli volume rm no-such-volume
expect 1 "Connection refused" "$build/basalt" -c "$dir/dead.conf" status
mkdir -p "$dir/mnt"
expect 1 "basalt-fuse: no monitor sent the cluster map: mon.a 127.0.0.1:$port: Connection refused" \
	timeout 20 "$build/basalt-fuse" "$dir/mnt" -c "$dir/dead.conf" -f
expect 1 "basalt-docker: cannot read the cluster map: no monitor answered: mon.a 127.0.0.1:$port: Connection refused" \
	timeout 20 "$build/basalt-docker" -c "$dir/dead.conf" -f --socket "$dir/docker.sock" --state-dir "$dir/docker"
echo "exit statuses: 2 for usage errors, 1 for failures"

# --- three monitors, one of them up: it answers, but knows no leader ---
{ kill -9 "${pid[mon.a]}"; wait "${pid[mon.a]}"; } 2>/dev/null || true
rm -rf "$dir/mon.a"
cluster_conf_local
mon_mkfs_all a
mon_start a
expect 1 "answered: it knows no leader (no quorum?)" cli --timeout 3 pool create p3
grep -qF "(is a majority of monitors up?)" "$dir/err" && grep -qF ": Connection refused" "$dir/err" ||
	fail "no quorum: $(cat "$dir/err")"
echo "no quorum: '$(cat "$dir/err")'"
# --mon NAME asks that monitor only: its refusal is enough, whatever the
# others do.
start=$(date +%s%N)
expect 1 "mon.b 127.0.0.1:" cli --mon b status
grep -qF ": Connection refused" "$dir/err" || fail "--mon b: $(cat "$dir/err")"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 10000 ] || fail "--mon b took $ms ms to report its refused port"
echo "--mon b: '$(cat "$dir/err")' after $ms ms"
echo "PASS"
