#!/usr/bin/env bash
# snap diff on a local cluster (3 monitors, 3 OSDs), the volume written
# through basalt-nbd with qemu-io at known offsets:
#  - after a snapshot, a 4 KiB write, a 256 KiB write over two objects, a
#    write where nothing was, and a discard of two whole objects are
#    listed as exactly those objects (data, data, data, zero), adjacent
#    ones merged; a discard where nothing was written is not listed;
#  - the listing matches the bytes: both states copied out with qemu-img
#    differ in exactly the extents listed, and zero extents read zeros;
#  - between two snapshots, from a snapshot to the live volume, after a
#    resize (the grown part), text and --json;
#  - a 10 GiB volume with 100 MiB written in 1,000 places after a
#    snapshot: the diff lists exactly the objects written, from one
#    listing (it never reads data: the admin ops it runs on have no read),
#    and says how long it took;
#  - refusals, one line each: newer before older, unknown volume or
#    snapshot, snapshots of two volumes, a spec that is not VOL@SNAP;
#  - volume du: exact parts of a volume with one snapshot, for every
#    volume and one, the parts adding up to what is stored, the same
#    figures as snap ls.
#   snap_diff.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: snap_diff.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-snapdiff.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
command -v qemu-io >/dev/null || fail "qemu-io is missing (scripts/install-deps.sh installs it)"

volumes_up 640M vm=16M data=4M
K=1024 M=1048576 block=131072

qio() { qemu-io -f raw "$@" >"$dir/qio.out" 2>&1 || fail "qemu-io $*: $(cat "$dir/qio.out")"; }
# diff_is WANT ARGS...: `snap diff ARGS` prints the lines WANT (then a total).
diff_is() {
	local want=$1
	shift
	cli snap diff "$@" >"$dir/diff" || fail "snap diff $*: $(cat "$dir/diff")"
	[ "$(grep -v '^total ' "$dir/diff")" = "$want" ] ||
		fail "snap diff $* listed:
$(cat "$dir/diff")
not:
$want"
}
# same_as_bytes A B: A and B (nbd export names) copied out differ in
# exactly the extents `snap diff A B` lists, and each zero one reads zeros.
same_as_bytes() {
	qemu-img convert -f raw -O raw "$uri/$1" "$dir/a.img" || fail "copying $1 out"
	qemu-img convert -f raw -O raw "$uri/$2" "$dir/b.img" || fail "copying $2 out"
	local to=$2
	[[ $to == *@* ]] || to=
	cli --json snap diff "$1" $to >"$dir/diff.json" || fail "snap diff --json $1 $to"
	python3 - "$dir/a.img" "$dir/b.img" "$dir/diff.json" $block <<'PY' || fail "snap diff $1 $2 is not what the bytes say"
import json, sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
d, bs = json.load(open(sys.argv[3])), int(sys.argv[4])
a = a + bytes(max(0, len(b) - len(a)))
changed = {i for i in range(0, len(b), bs) if a[i:i + bs] != b[i:i + bs]}
listed = set()
for e in d['extents']:
    for i in range(e['offset'], e['offset'] + e['length'], bs):
        listed.add(i)
        if e['type'] == 'zero':
            assert b[i:i + bs] == bytes(len(b[i:i + bs])), ('zero extent has data', i)
assert changed == listed, ('changed blocks', sorted(changed), 'listed', sorted(listed))
assert d['changed_bytes'] == sum(e['length'] for e in d['extents'])
print('bytes agree: %d blocks changed' % len(changed))
PY
}

qio -c "write -P 0x11 0 4M" "$uri/vm"
qio -c "write -P 0x55 0 4M" "$uri/data"
cli snap create vm@s1 data@s1 >/dev/null

# --- nothing written since: nothing listed ------------------------------------------------
diff_is "" vm@s1
grep -q "^total 0 bytes (0 B) changed in 0 extents" "$dir/diff" || fail "total: $(cat "$dir/diff")"

# --- writes at known offsets after s1 ---------------------------------------------------
qio -c "write -P 0x22 $((M + 4 * K)) 4K" -c "write -P 0x33 3M 256K" -c "write -P 0x44 8M 4K" \
	-c "discard 2M 256K" -c "discard 12M 1M" "$uri/vm"
s1_live="$M $block data
$((2 * M)) $((2 * block)) zero
$((3 * M)) $((2 * block)) data
$((8 * M)) $block data"
diff_is "$s1_live" vm@s1
grep -q "^total $((6 * block)) bytes (768 KiB) changed in 4 extents of 128 KiB objects, from vm@s1 (16 MiB) to vm (16 MiB)$" "$dir/diff" ||
	fail "total: $(cat "$dir/diff")"
same_as_bytes vm@s1 vm
# Another volume's writes are not vm's.
qio -c "write -P 0x66 0 4K" "$uri/data"
diff_is "$s1_live" vm@s1
cli snap diff data@s1 >"$dir/diff"
[ "$(head -1 "$dir/diff")" = "0 $block data" ] || fail "data@s1: $(cat "$dir/diff")"

# --- two snapshots ----------------------------------------------------------------------
cli snap create vm@s2 >/dev/null
qio -c "write -P 0x77 0 4K" "$uri/vm"
diff_is "$s1_live" vm@s1 vm@s2
same_as_bytes vm@s1 vm@s2
diff_is "0 $block data" vm@s2
diff_is "0 $block data
$s1_live" vm@s1
same_as_bytes vm@s1 vm
cli --json snap diff vm@s1 vm@s2 | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d['changed_bytes'] == 6 * $block, d
assert [e['type'] for e in d['extents']] == ['data', 'zero', 'data', 'data'], d
assert d['extents'][1] == {'offset': 2 * $M, 'length': 2 * $block, 'type': 'zero'}, d
assert (d['from'], d['to'], d['from_size'], d['to_size']) == ('vm@s1', 'vm@s2', 16 * $M, 16 * $M), d
" || fail "snap diff --json vm@s1 vm@s2: $(cli --json snap diff vm@s1 vm@s2)"
# --json after the command's arguments too.
cli snap diff vm@s2 --json | python3 -c "import json,sys; assert json.load(sys.stdin)['changed_bytes'] == $block" ||
	fail "snap diff vm@s2 --json"

# --- a resized volume: the grown part where the live volume has data ---------------------
cli volume resize vm 20M >/dev/null
qio -c "write -P 0x88 18M 4K" "$uri/vm"
diff_is "0 $block data
$((18 * M)) $block data" vm@s2
grep -q "from vm@s2 (16 MiB) to vm (20 MiB)" "$dir/diff" || fail "sizes: $(cat "$dir/diff")"
same_as_bytes vm@s2 vm

# --- volume du ----------------------------------------------------------------------------
# data: 32 objects written, s1, then 4 KiB into object 0 (its clone for
# s1): live alone holds object 0, s1 alone its clone, 31 are shared.
cli --json volume du >"$dir/du.json" || fail "volume du --json"
cli --json snap ls vm >"$dir/ls.json"
python3 - "$dir/du.json" "$dir/ls.json" $block <<'PY' || fail "volume du: $(cat "$dir/du.json")"
import json, sys
du, ls, bs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
vols = {v['name']: v for v in du['volumes']}
assert sorted(vols) == ['data', 'vm'], vols
d = vols['data']
assert (d['size'], d['referenced_bytes'], d['exclusive_bytes'], d['snapshots_bytes'],
        d['snapshots_exclusive_bytes'], d['shared_bytes'], d['stored_bytes']) == \
    (4 << 20, 32 * bs, bs, bs, bs, 31 * bs, 33 * bs), d
assert [(s['name'], s['referenced_bytes'], s['exclusive_bytes']) for s in d['snapshots']] == \
    [('s1', 32 * bs, bs)], d
for v in du['volumes'] + [du['total']]:
    parts = v['exclusive_bytes'] + v['snapshots_exclusive_bytes'] + v['shared_bytes'] + v['garbage_bytes']
    assert parts == v['stored_bytes'], ('parts do not add up', v)
assert du['total']['stored_bytes'] == sum(v['stored_bytes'] for v in du['volumes'])
v = vols['vm']
for key in ('referenced_bytes', 'exclusive_bytes', 'snapshots_bytes', 'stored_bytes', 'snapshots'):
    assert v[key] == ls[key], (key, v[key], ls[key])
print('volume du: parts add up; data exact; vm as snap ls says')
PY
cli --json volume du vm | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert [v['name'] for v in d['volumes']] == ['vm'] and d['total']['stored_bytes'] == d['volumes'][0]['stored_bytes'], d
assert d['volumes'][0]['raw_bytes'] == 3 * d['volumes'][0]['stored_bytes'] == d['total']['raw_bytes'], d
" || fail "volume du vm --json: $(cli --json volume du vm)"
cli volume du data >"$dir/du.txt" || fail "volume du data"
grep -q "^total: stored 4.1 MiB = live-exclusive 128 KiB + snapshot-exclusive 128 KiB + shared 3.9 MiB (bytes written, one copy); raw 12.4 MiB on the OSDs (copies, or chunks)$" "$dir/du.txt" ||
	fail "volume du data said: $(cat "$dir/du.txt")"
grep -q "^  @s1 " "$dir/du.txt" || fail "volume du data has no s1 line: $(cat "$dir/du.txt")"
cat "$dir/du.txt"

# --- a 10 GiB volume, 100 MiB changed in 1,000 places --------------------------------------
# Each place is 100 KiB at a 4 KiB-aligned offset spread over the volume:
# the diff lists exactly the 128 KiB objects those bytes fall in (its
# granularity), merged where they touch, from one listing — the time is
# that of the objects, not of 10 GiB.
cli volume create big --size 10G >/dev/null
cli snap create big@empty >/dev/null
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
obj, size, n, length = 131072, 10 << 30, 1000, 100 << 10
places = [((i * 2654435761) % (size // 4096 - 64)) * 4096 for i in range(n)]
with open(f"{d}/big.cmds", "w") as f:
    for i, off in enumerate(places):
        f.write(f"write -P {1 + i % 250} {off} {length}\n")
touched = sorted({o for off in places for o in range(off // obj, (off + length - 1) // obj + 1)})
ext = []
for o in touched:
    if ext and ext[-1][0] + ext[-1][1] == o * obj:
        ext[-1][1] += obj
    else:
        ext.append([o * obj, obj])
with open(f"{d}/big.want", "w") as f:
    for off, ln in ext:
        f.write(f"{off} {ln}\n")
PY
qemu-io -f raw "$uri/big" <"$dir/big.cmds" >"$dir/qio.out" 2>&1 || fail "writing 1,000 places: $(tail -3 "$dir/qio.out")"
t0=$(date +%s.%N)
cli --json snap diff big@empty >"$dir/big.json" || fail "snap diff big@empty"
t1=$(date +%s.%N)
python3 - "$dir/big.json" "$dir/big.want" <<'PY' || fail "the 10 GiB diff"
import json, sys
d = json.load(open(sys.argv[1]))
got = [(e["offset"], e["length"]) for e in d["extents"]]
want = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
assert all(e["type"] == "data" for e in d["extents"]), "a zero extent in a diff of writes"
assert got == want, f"{len(got)} extents listed, {len(want)} expected; first differences: " + \
    str([(g, w) for g, w in zip(got, want) if g != w][:3])
print(f"10 GiB volume: {len(got)} extents, {d['changed_bytes'] >> 20} MiB changed, as written")
PY
echo "diff of the 10 GiB volume: $(python3 -c "print(round($t1 - $t0, 2))") s"
cli snap rm big@empty >/dev/null

# --- refusals: one line each, exit status not 0 ------------------------------------------
refused() { # refused "MESSAGE" ARGS...
	local want=$1
	shift
	if cli "$@" >"$dir/out" 2>"$dir/err"; then fail "basalt $* succeeded"; fi
	grep -qF "$want" "$dir/err" || fail "basalt $* said: $(cat "$dir/err"), not: $want"
	[ "$(wc -l <"$dir/err")" = 1 ] || fail "basalt $* said more than one line: $(cat "$dir/err")"
	[ ! -s "$dir/out" ] || fail "basalt $* printed: $(cat "$dir/out")"
}
refused "vm@s1 is older than vm@s2: a diff goes from the older snapshot to the newer" \
	snap diff vm@s2 vm@s1
refused "volume 'vm' has no snapshot 'nope'" snap diff vm@nope
refused "volume 'vm' has no snapshot 'nope'" snap diff vm@s1 vm@nope
refused "volume 'ghost' does not exist" snap diff ghost@s1
refused "vm@s1 and data@s1 are snapshots of different volumes" snap diff vm@s1 data@s1
refused "'vm' is not VOLUME@SNAPSHOT" snap diff vm
refused "usage: basalt snap diff" snap diff
refused "volume 'ghost' does not exist" volume du ghost
refused "usage: basalt volume du [NAME] [--json]" volume du vm data
{ cli --json snap diff vm@s2 vm@s1 2>&1 >/dev/null || true; } | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d['errno'] == 'EINVAL' and 'older' in d['error'], d" || fail "a --json refusal is not JSON"
echo "snap_diff: ok"
