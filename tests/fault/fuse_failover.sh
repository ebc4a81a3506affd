#!/usr/bin/env bash
# Failover of a volume between two basalt-fuse clients, as when a
# container's server dies (3 monitors, 3 OSDs, pool of size 3):
#  1. client A mounts and four writer threads write distinct 64 KiB blocks
#     of the volume, logging each block once its write returned (the
#     files are direct_io: returned = on every copy);
#  2. A is frozen (SIGSTOP) with writes in flight;
#  3. client B mounts with --break-lock and opens the volume for writing,
#     which fences A; B reads the volume: every block A acknowledged holds
#     A's data, every other block holds A's data or zeros (in flight);
#  4. A is resumed: its late writes fail (fenced) and its writers stop;
#  5. B reads the volume again: nothing changed since step 3 but B's own
#     write — A's late writes never reached the volume.
#   fuse_failover.sh BUILD_DIR [ROUNDS]
set -euo pipefail
build=$(cd "${1:?usage: fuse_failover.sh BUILD_DIR [ROUNDS]}" && pwd)
rounds=${2:-2}
dir=$(mktemp -d /tmp/basalt-failover.XXXXXX)
. "$(dirname "$0")/../integration/cluster_lib.sh"
mA=$dir/a mB=$dir/b
mkdir -p "$mA" "$mB"
cleanup() {
	for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	for m in "$mA" "$mB"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT

cluster_up_local 1G
cli pool create rbd --size 3 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# The writer: THREADS threads, thread t writes blocks t, t+THREADS, ...
# (64 KiB each, content from the block number and the round), appending
# "BLOCK\n" to the ack log after each write returned, and starts over
# from its first block at the end, so that writes are in flight whenever
# A is frozen however fast the cluster is (the content of a block is the
# same every pass); it never writes the last block (B's). It exits when
# every thread has seen a write fail.
cat >"$dir/writer.py" <<'EOF'
import hashlib, os, sys, threading
path, acks, tag, blocks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
THREADS, BS = 4, 64 << 10
fd = os.open(path, os.O_RDWR)
ack = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def content(b):
    return hashlib.sha256(f"{tag}:{b}".encode()).digest() * (BS // 32)
errors = []
def run(t):
    b = t
    while True:
        try:
            os.pwrite(fd, content(b), b * BS)
        except OSError as e:
            errors.append(f"block {b}: {e.strerror}")
            return
        os.write(ack, f"{b}\n".encode())
        b += THREADS
        if b >= blocks - 1:
            b = t
ts = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(errors) if errors else "all written")
EOF
# check.py VOLUME_FILE ACKS TAG BLOCKS OUT [BEFORE]: every acknowledged
# block holds TAG's content, every other one TAG's or zeros; writes the
# state of each block to OUT; with BEFORE, the state must equal it (but
# for the last block, B's own).
cat >"$dir/check.py" <<'EOF'
import hashlib, os, sys
path, acks, tag, blocks, out = sys.argv[1:6]
blocks, BS = int(blocks), 64 << 10
acked = {int(l) for l in open(acks).read().split()}
fd = os.open(path, os.O_RDONLY)
state, inflight = [], 0
for b in range(blocks):
    d = os.pread(fd, BS, b * BS)
    want = hashlib.sha256(f"{tag}:{b}".encode()).digest() * (BS // 32)
    if d == want:
        state.append("A")
    elif d == bytes(BS):
        state.append("0")
    else:
        state.append("?")
    if b in acked and state[-1] != "A":
        sys.exit(f"block {b} was acknowledged to A but holds {'zeros' if state[-1] == '0' else 'other data'}")
    if state[-1] == "?" and b != blocks - 1:
        sys.exit(f"block {b} holds data nobody wrote")
    inflight += b not in acked and state[-1] == "A"
open(out, "w").write("".join(state))
if len(sys.argv) > 6:
    before = open(sys.argv[6]).read()
    for b in range(blocks - 1):
        if before[b] != state[b]:
            sys.exit(f"block {b} changed after the takeover: {before[b]} -> {state[b]}")
print(f"{len(acked)} acknowledged blocks intact, {inflight} unacknowledged ones landed")
EOF

blocks=2048 # 128 MiB
for r in $(seq "$rounds"); do
	vol=fo$r
	cli volume create "$vol" --size $((blocks * 64))K >/dev/null
	fuse_start A$r "$mA"
	fuse_start B$r "$mB" --break-lock
	acks=$dir/acks.$r
	: >"$acks"
	python3 "$dir/writer.py" "$mA/volumes/$vol" "$acks" "r$r" "$blocks" >"$dir/writer.$r" 2>&1 &
	writer=$!
	pid[writer$r]=$writer
	# Let it write a while, at a random moment freeze A with writes in flight.
	for _ in $(seq 100); do [ "$(wc -l <"$acks")" -ge 200 ] && break; sleep 0.05; done
	sleep "0.$((RANDOM % 10))"
	kill -STOP "${pid[A$r]}"
	sleep 0.5 # answers A had already sent reach its writers
	cp "$acks" "$acks.frozen"
	n=$(wc -l <"$acks.frozen")
	[ "$n" -ge 50 ] || fail "round $r: only $n blocks written before the freeze"
	# B takes the volume over: opening it for writing breaks A's lock.
	python3 - "$mB/volumes/$vol" "$blocks" <<'EOF' || fail "round $r: B could not open the volume for writing"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, b"B" * 65536, (int(sys.argv[2]) - 1) * 65536)
os.close(fd)
EOF
	grep -q "took the lock\|holding the lock of volume $vol" "$dir/B$r.log" || fail "round $r: B does not say it holds the lock"
	python3 "$dir/check.py" "$mB/volumes/$vol" "$acks.frozen" "r$r" "$blocks" "$dir/state1.$r" ||
		fail "round $r: B does not see what A acknowledged"
	# A comes back: fenced, its writes fail, its writers stop.
	kill -CONT "${pid[A$r]}"
	for _ in $(seq 200); do kill -0 "$writer" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$writer" 2>/dev/null && fail "round $r: A's writers did not stop after A was fenced"
	wait "$writer" || true
	grep -q "Input/output error" "$dir/writer.$r" || fail "round $r: A's writers: $(cat "$dir/writer.$r")"
	grep -q "was fenced" "$dir/A$r.log" || fail "round $r: A's log does not say it was fenced"
	late=$(($(wc -l <"$acks") - n))
	python3 "$dir/check.py" "$mB/volumes/$vol" "$acks" "r$r" "$blocks" "$dir/state2.$r" \
		"$dir/state1.$r" >"$dir/check2.$r" || fail "round $r: $(cat "$dir/check2.$r")"
	echo "round $r: $(cat "$dir/check2.$r"); A fenced, $late writes acknowledged after the freeze (answers already sent), none landed after the takeover"
	for p in A$r B$r; do
		kill -TERM "${pid[$p]}"
		wait "${pid[$p]}" || fail "$p exited non-zero"
	done
done
echo "PASS fuse_failover"
