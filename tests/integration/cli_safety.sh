#!/usr/bin/env bash
# What an operator meets at the command line, on a local cluster (3
# monitors, 3 OSDs, basalt-nbd):
#  - a shrink is refused while the volume is locked (open for writing
#    through basalt-nbd), as rm is; without --allow-shrink it is refused
#    naming the flag and by how much it would shrink, and the data past
#    the new end is still there; with it the volume shrinks and the data
#    before the new end is intact;
#  - pool create --ec refuses a malformed K+M, --size beside it and a
#    min-size outside K..K+M, naming the rule, and creates nothing; a
#    2+1 pool is created (size 3, min-size 3, 256K blocks) and pool ls
#    shows it as erasure 2+1;
#  - pool ls and volume ls with none say so; "1 snapshot", "2 snapshots";
#  - a 5,000-character name is refused naming the limit, not echoed.
#   cli_safety.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: cli_safety.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-cli-safety.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	exec 3>&- 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in qemu-io nbdinfo; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G "mon_lock_lease = 3s"

# refuse TEXT ARGS...: `basalt ARGS` fails, saying TEXT (output in $dir/out).
refuse() {
	local want=$1
	shift
	local what="$*"
	what=${what:0:60}
	if cli "$@" >"$dir/out" 2>&1; then fail "'$what' succeeded: $(head -c 300 "$dir/out")"; fi
	grep -qF -- "$want" "$dir/out" || fail "'$what' said '$(head -c 300 "$dir/out")', expected '$want'"
}

# --- empty lists say so ---
[ "$(cli pool ls)" = "no pools (basalt pool create NAME makes one)" ] || fail "pool ls with no pools: '$(cli pool ls)'"
[ "$(cli --json pool ls)" = "[]" ] || fail "pool ls --json with no pools: $(cli --json pool ls)"
[ "$(cli volume ls)" = "no volumes (basalt volume create NAME --size SIZE makes one)" ] ||
	fail "volume ls with no volumes: '$(cli volume ls)'"
echo "empty: pool ls and volume ls say there are none"

# --- erasure-coded pools: what is wrong is named, nothing is created ---
refuse "--ec takes K+M, K data chunks (1 to 16) and M parity chunks (1 to 4), e.g. 2+1: not '2'" \
	pool create ec --ec 2
refuse "not '2+0'" pool create ec --ec 2+0
refuse "an erasure-coded pool's size is K+M (3): drop --size" pool create ec --ec 2+1 --size 3
refuse "an erasure-coded pool's min_size must be k (2) to k+m (3), not 4" \
	pool create ec --ec 2+1 --min-size 4
refuse "an erasure-coded block_size must be k=2 chunks of a power of two" \
	pool create ec --ec 2+1 --block-size 96K
[ "$(cli --json pool ls)" = "[]" ] || fail "a refused pool create --ec created a pool: $(cli pool ls)"
cli pool create ec --ec 2+1 --pg-num 8 >/dev/null
cli --json pool ls >"$dir/pools"
python3 - "$dir/pools" <<'PY' || fail "pool ls after pool create --ec 2+1: $(cat "$dir/pools")"
import json, sys
p = json.load(open(sys.argv[1]))
assert len(p) == 1, p
p = p[0]
assert p["name"] == "ec" and p["type"] == "erasure" and p["k"] == 2 and p["m"] == 1, p
assert p["size"] == 3 and p["min_size"] == 3 and p["block_size"] == 256 << 10, p
PY
[[ "$(cli pool ls)" == *"ec"*"erasure 2+1"*"block 256K"* ]] || fail "pool ls: $(cli pool ls)"
cli pool rm ec >/dev/null
echo "ec: malformed K+M, --size and min-size refused, nothing created; 2+1 created as size 3, min-size 3, 256K"

cli pool create rbd --size 3 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# --- names too long: the limit, not the name ---
long=$(printf 'n%.0s' $(seq 5000))
for args in "pool create $long" "pool rm $long" "volume create $long --size 1M" "volume info $long" \
	"volume rm $long" "volume resize $long 1M" "volume rename rbd $long" "volume snap create $long s" \
	"pg ls $long" "object ls $long" "object stat $long 1:0" "auth add client.$long"; do
	# shellcheck disable=SC2086
	refuse "is at most 63 characters; this one has" $args
	[ "$(wc -c <"$dir/out")" -lt 200 ] || fail "'${args:0:20}...' echoed the name: $(head -c 200 "$dir/out")"
done
echo "long names: refused naming the limit (63 characters), not echoed"

# --- plurals ---
cli volume create few --size 8M >/dev/null
[[ "$(cli volume ls)" == *" 0 snapshots"* ]] || fail "volume ls: $(cli volume ls)"
cli volume snap create few s1 >/dev/null
[[ "$(cli volume ls)" == *" 1 snapshot" ]] || fail "one snapshot: $(cli volume ls)"
cli volume snap create few s2 >/dev/null
[[ "$(cli volume ls)" == *" 2 snapshots" ]] || fail "two snapshots: $(cli volume ls)"
cli volume snap rm few s1 >/dev/null && cli volume snap rm few s2 >/dev/null && cli volume rm few >/dev/null ||
	fail "cleaning up volume few"
echo "plurals: 0 snapshots, 1 snapshot, 2 snapshots"

# --- shrink: locked, without --allow-shrink, with it ---
cli volume create vm --size 64M >/dev/null
size_of() { cli --json volume info vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'; }
nbd_start
# basalt-nbd listens before its first map has come: wait until it knows vm.
for _ in $(seq 50); do nbdinfo --list "${uri%/}" 2>/dev/null | grep -q 'export="vm"' && break; sleep 0.1; done
mkfifo "$dir/q.fifo"
qemu-io -f raw "$uri/vm" <"$dir/q.fifo" >"$dir/q.out" 2>&1 3>&- &
pid[qemu-io]=$!
exec 3>"$dir/q.fifo"
wrote() { # wrote N: until qemu-io said N writes are done
	for _ in $(seq 100); do [ "$(grep -c 'wrote 4194304/4194304' "$dir/q.out")" = "$1" ] && return 0; sleep 0.1; done
	fail "writes through basalt-nbd: $(cat "$dir/q.out")"
}
echo "write -P 0x5a 0 4M" >&3
wrote 1
echo "write -P 0xa5 40M 4M" >&3
wrote 2
refuse "is in use: locked by client.admin on" volume resize vm 32M --allow-shrink
grep -q "cannot shrink while a client has it open for writing" "$dir/out" || fail "locked shrink: $(cat "$dir/out")"
[ "$(size_of)" = $((64 << 20)) ] || fail "a locked volume was shrunk to $(size_of)"
cli volume resize vm 128M >/dev/null || fail "growing a locked volume"
echo "locked: shrink refused while basalt-nbd holds the lock; growing is allowed"
exec 3>&-
wait "${pid[qemu-io]}" 2>/dev/null || true
for _ in $(seq 50); do
	[ "$(cli --json volume info vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["lock"])')" = None ] && break
	sleep 0.1
done
refuse "would shrink it by 96 MiB" volume resize vm 32M
grep -qF -- "add --allow-shrink to shrink it" "$dir/out" || fail "no flag named: $(cat "$dir/out")"
[ "$(size_of)" = $((128 << 20)) ] || fail "shrunk without --allow-shrink: $(size_of)"
qemu-io -f raw -r -c "read -P 0xa5 40M 4M" "$uri/vm" >"$dir/r.out" 2>&1 && ! grep -qi fail "$dir/r.out" ||
	fail "data past the new end changed by a refused shrink: $(cat "$dir/r.out")"
echo "no flag: shrink refused naming --allow-shrink and by how much; the data is intact"
cli volume resize vm 32M --allow-shrink >"$dir/out" || fail "shrink with --allow-shrink: $(cat "$dir/out")"
grep -q "^freed [0-9]* objects" "$dir/out" || fail "shrink output: $(cat "$dir/out")"
[ "$(size_of)" = $((32 << 20)) ] || fail "size after the shrink: $(size_of)"
qemu-io -f raw -r -c "read -P 0x5a 0 4M" "$uri/vm" >"$dir/r.out" 2>&1 && ! grep -qi fail "$dir/r.out" ||
	fail "data before the new end after the shrink: $(cat "$dir/r.out")"
echo "--allow-shrink: shrunk to 32 MiB, objects past the end freed, the data before it intact"
echo "PASS cli_safety"
