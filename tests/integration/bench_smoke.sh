#!/usr/bin/env bash
# bench/run.sh --quick --only basalt on the suite's build: every job runs,
# the Markdown table and results.json are produced and parse, every row has
# operations and a CPU figure. A smoke test: no timing is judged.
#   bench_smoke.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: bench_smoke.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/basalt-bench-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
bench/run.sh --quick --only basalt --build "$build" --dir "$tmp" >"$tmp/out" 2>"$tmp/err" ||
	{ tail -20 "$tmp/err" >&2; echo "FAIL: bench/run.sh" >&2; exit 1; }
res=$(sed -n 's/^results in //p' "$tmp/err" | tail -1)
[ -n "$res" ] && [ -d "$res" ] || { echo "FAIL: no results directory: $(tail -3 "$tmp/err")" >&2; exit 1; }
trap 'rm -rf "$tmp" "$res"' EXIT
python3 - "$res" <<'PY' || { echo "FAIL: $(cat "$res/table.md")" >&2; exit 1; }
import json, sys
res = sys.argv[1]
rows = json.load(open(f"{res}/results.json"))
jobs = {"4k-randwrite-qd1", "4k-randwrite-qd32", "4k-randread-qd1", "4k-randread-qd32",
        "1m-write-qd4", "1m-read-qd4"}
got = {r["job"] for r in rows if r["system"] == "basalt-nbd"}
assert got == jobs, got
for r in rows:
    assert r["iops"] > 0 and r["mean_us"] > 0, r
    assert r["cpu_us_per_io"] and r["cpu_us_per_io"] > 0, r
table = open(f"{res}/table.md").read().splitlines()
assert table[0].startswith("| job | system | IOPS"), table[0]
assert sum("Basalt, basalt-nbd" in l for l in table) == 6, table
for j in jobs:
    json.load(open(f"{res}/{j}-basalt-nbd.json"))
PY
echo "PASS bench_smoke: 6 jobs through basalt-nbd, table and JSON parse"
