#!/usr/bin/env bash
# bench/run.sh --quick --only basalt on the suite's build: every job runs
# through basalt-nbd and the native client (bench/volume_load), the
# Markdown table, results.json and the PNG plots are produced and parse,
# every row has operations and a CPU figure; the space run shows Basalt's
# immediate GC: a TRIM of half the volume leaves half its copies, deleting
# it gives everything back; 4 KiB writes take whole 128 KiB blocks; bad
# options are refused (scale.sh, bigmap.sh and their programs too);
# ec_bench prints a row per code. A smoke test: no timing is judged.
#   bench_smoke.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: bench_smoke.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/basalt-bench-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Bad options: one clear line and exit 2, before anything starts.
for bad in "--rounds 0|--rounds takes a positive count" "--space-size x|bad --space-size x" \
	"--only foo|--only takes basalt, ceph, device" "--jobs 4k-nope|unknown job 4k-nope" \
	"--ec 4+2|--ec takes K+M with K+M at most 3" "--ec 2x1|--ec takes K+M" \
	"--sideways|unknown option --sideways"; do
	rc=0
	bench/run.sh ${bad%%|*} --build "$build" >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] && grep -q -- "${bad#*|}" "$tmp/err" ||
		{ echo "FAIL: run.sh ${bad%%|*}: rc $rc, $(head -2 "$tmp/err")" >&2; exit 1; }
done
# The scale benchmarks (not run here: they take long) refuse bad options
# the same way; the placement benchmark runs.
for bad in "scale.sh --objects 12x|--objects takes counts" "scale.sh --sideways|usage: bench/scale.sh" \
	"bigmap.sh --volumes x|--osds and --volumes take numbers" "bigmap.sh --sideways|usage: bench/bigmap.sh"; do
	rc=0
	bench/${bad%%|*} --build "$build" >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] && grep -q -- "${bad#*|}" "$tmp/err" ||
		{ echo "FAIL: ${bad%%|*}: rc $rc, $(head -2 "$tmp/err")" >&2; exit 1; }
done
for bad in "placement_bench --osds 0|usage: placement_bench" "bigmap --osds 5|usage: bigmap" \
	"objects --fill|usage: objects" "store_ram --objects 0|usage: store_ram" \
	"store_ram --objects 1x|--objects" "ec_bench --chunk 3000|whole 4K units" \
	"ec_bench --seconds 0|usage: ec_bench" "ec_bench --seconds 1x|usage: ec_bench"; do
	rc=0 cmd=${bad%%|*}
	"$build/bench/${cmd%% *}" ${cmd#* } >/dev/null 2>"$tmp/err" || rc=$?
	[ "$rc" = 2 ] && grep -q -- "${bad#*|}" "$tmp/err" ||
		{ echo "FAIL: $cmd: rc $rc, $(head -2 "$tmp/err")" >&2; exit 1; }
done
# The store RAM benchmark on a tiny store: it fills, reopens and reads back.
"$build/bench/store_ram" --device "$tmp/ram.img" --objects 2000 --reads 200 >"$tmp/ram" 2>"$tmp/err" &&
	[ "$(grep -c '"step": "randread4k"' "$tmp/ram")" = 4 ] && [ ! -e "$tmp/ram.img" ] ||
	{ tail -5 "$tmp/err" >&2; echo "FAIL: store_ram" >&2; exit 1; }
# The erasure code benchmark: a row per code, every figure a rate.
[ "$("$build/bench/ec_bench" --chunk 16K --seconds 0.01 | grep -Ec '^\| (2\+1|4\+2|8\+3) \| 16K( \| [0-9]+\.[0-9]+){6} \|$')" = 3 ] ||
	{ echo "FAIL: ec_bench did not print its three rows" >&2; exit 1; }
"$build/bench/placement_bench" --lookups 1000 | grep -Eq '^\| 100 \| 10 \| 1024 \| [0-9]+ \| [0-9.]+ \| [0-9]+x \|$' ||
	{ echo "FAIL: placement_bench printed no row" >&2; exit 1; }
bench/run.sh --quick --only basalt --build "$build" --dir "$tmp" >"$tmp/out" 2>"$tmp/err" ||
	{ tail -20 "$tmp/err" >&2; echo "FAIL: bench/run.sh" >&2; exit 1; }
res=$(sed -n 's/^results in //p' "$tmp/err" | tail -1)
[ -n "$res" ] && [ -d "$res" ] || { echo "FAIL: no results directory: $(tail -3 "$tmp/err")" >&2; exit 1; }
trap 'rm -rf "$tmp" "$res"' EXIT
python3 - "$res" <<'PY' || { echo "FAIL: $(cat "$res/table.md")" >&2; exit 1; }
import json, sys
res = sys.argv[1]
out = json.load(open(f"{res}/results.json"))
rows = out["jobs"]
jobs = {"4k-randwrite-qd1", "4k-randwrite-qd32", "4k-randread-qd1", "4k-randread-qd32",
        "1m-write-qd4", "1m-read-qd4"}
for system in ("basalt-nbd", "basalt-native"):
    got = {r["job"] for r in rows if r["system"] == system}
    assert got == jobs, (system, got)
for r in rows:
    assert r["iops"] > 0 and r["mean_us"] > 0 and r["p99_us"] >= r["mean_us"] * 0.5, r
    assert r["cpu_us_per_io"] and r["cpu_us_per_io"] > 0, r
    assert 0 < r["osd_cpu_us_per_io"] <= r["cpu_us_per_io"], r
table = open(f"{res}/table.md").read().splitlines()
assert table[0].startswith("| job | system | IOPS"), table[0]
assert sum("Basalt, basalt-nbd" in l for l in table) == 6, table
assert sum("Basalt, libbasalt (native)" in l for l in table) == 6, table
for j in jobs:
    for system in ("basalt-nbd", "basalt-native"):
        json.load(open(f"{res}/{j}-{system}-1.json"))
for png in ("iops.png", "p99.png"):
    assert open(f"{res}/{png}", "rb").read(8) == b"\x89PNG\r\n\x1a\n", png
# The space run (64 MiB volume, 3 copies): used above the empty volume.
space = {s["step"]: s for s in out["space"] if s["system"] == "basalt"}
mib = 1 << 20
steps = ["created", "written"] + [f"overwritten-{i}" for i in range(1, 6)] + ["half-trimmed", "deleted"]
assert list(space) == steps + ["4k-dense", "4k-sparse"], list(space)
def above(step): return space[step]["above_created_bytes"] / mib
for step in steps[1:7]:
    assert 190 <= above(step) <= 200, (step, above(step))  # 3 x 64 MiB, overwrites free at once
assert 94 <= above("half-trimmed") <= 100, above("half-trimmed")
assert -2 <= above("deleted") <= 2, above("deleted")
assert any(l.startswith("| half-trimmed | 32 |") for l in table), table
# 4 KiB random writes of 8 MiB: over the first 8 MiB whole, 3 copies of 64
# blocks; at random over the second half, nearly each of its 256 blocks
# taken whole on every OSD.
assert 23 <= space["4k-dense"]["added_bytes"] / mib <= 25, space["4k-dense"]
assert 88 <= space["4k-sparse"]["added_bytes"] / mib <= 97, space["4k-sparse"]
PY
echo "PASS bench_smoke: 6 jobs through basalt-nbd and libbasalt, table, JSON, plots, space run"
