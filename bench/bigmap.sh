#!/usr/bin/env bash
# A big cluster map on a real monitor quorum (issue 21): 3 monitors and 3
# small OSDs (scripts/cluster.sh), then, through the monitors' command
# path (bench/bigmap.c), OSDs registered up to OSDS (on 10 pretend hosts:
# they never run, so the leader marks them down, then out, as it would)
# and VOLUMES volumes. Measures the whole map's size, the bytes a
# subscribed client receives per map change against the whole map, the
# time to create a volume with the CLI (median of 5) at 0 volumes and at
# VOLUMES, the creation rate in one monitor session, and each monitor's
# RSS before and after. Not in CI.
#
#   bench/bigmap.sh [--osds N] [--volumes N] [--dir DIR] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

osds=100 volumes=10000 rest=()
while [ $# -gt 0 ]; do
	case "$1" in
	--osds) osds=${2:?}; shift 2 ;;
	--volumes) volumes=${2:?}; shift 2 ;;
	*) rest+=("$1"); shift ;;
	esac
done
bench_more_usage=' [--osds N] [--volumes N]'
bench_options bigmap ${rest[@]+"${rest[@]}"}
for v in "$osds" "$volumes"; do
	case "$v" in '' | *[!0-9]*) echo "bench/bigmap.sh: --osds and --volumes take numbers, not '$v'" >&2; exit 2 ;; esac
done
bench_build bigmap
bench_workspace bigmap
d=$work/basalt
BASALT_BUILD=$build scripts/cluster.sh up --dir "$d" --osd-size 256M >/dev/null
export BASALT_CONF=$d/basalt.conf
"$build/basalt" pool create rbd --size 3 --pg-num 128 >/dev/null

mon_rss() { # the monitors' VmRSS in MiB, "a / b / c"
	local out=() p
	for p in $(awk '$1 ~ /^mon\./ {print $2}' "$d/pids"); do
		out+=("$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$p/status")")
	done
	local IFS=/
	echo "${out[*]}"
}
# cli_create_ms PREFIX: the median wall time of 5 `basalt volume create`.
cli_create_ms() {
	local i t0 ts=()
	for i in 1 2 3 4 5; do
		t0=$(date +%s%N)
		"$build/basalt" volume create "$1-$i" --size 1G --pool rbd >/dev/null
		ts+=($((($(date +%s%N) - t0) / 1000000)))
	done
	printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p
}

rss0=$(mon_rss)
cli0=$(cli_create_ms cli-empty)
json=$("$build/bench/bigmap" -c "$BASALT_CONF" --keyring "$d/keyring" --osds "$osds" \
	--volumes "$volumes" --changes 50 --pool rbd)
echo "$json" >"$out/bigmap.json"
cli1=$(cli_create_ms cli-full)
rss1=$(mon_rss)
t0=$(date +%s%N)
"$build/basalt" status >/dev/null
status_ms=$((($(date +%s%N) - t0) / 1000000))
python3 - "$json" "$cli0" "$cli1" "$rss0" "$rss1" "$status_ms" <<'PY' | tee "$out/table.md"
import json, sys
j = json.loads(sys.argv[1]); cli0, cli1, rss0, rss1, st = sys.argv[2:]
rows = [
    ("OSDs in the map", f"{j['osds']} (3 running on 3 hosts, the rest registered on {j['hosts']} more hosts)"),
    ("volumes in the map at the end", f"{j['volumes']:,}"),
    ("map epoch at the end", j["epoch"]),
    ("whole map, encoded (bytes)", f"{j['full_map_bytes']:,}"),
    ("a subscribed client: whole map received once (bytes)", f"{j['client_full_bytes']:,}"),
    (f"a subscribed client: per map change, {j['changes']} volume creations ({j['updates']} updates; bytes)", f"{j['inc_bytes_per_update']:.0f}"),
    ("  whole maps received meanwhile (bytes)", f"{j['full_bytes_during_changes']:,}"),
    ("volume create in one monitor session: first 1000 / last 1000 (ms each)", f"{j['create_first_1000_ms']:.2f} / {j['create_last_1000_ms']:.2f}"),
    (f"  all {j['created']:,} (s)", f"{j['create_all_s']:.1f}"),
    ("  create + the client has the update (ms, at the end)", f"{j['create_and_receive_ms']:.2f}"),
    ("`basalt volume create` at 0 volumes / at the end (ms, median of 5)", f"{cli0} / {cli1}"),
    ("`basalt status` at the end (ms)", st),
    ("monitors' RSS before / after (MiB, mon.a/b/c)", f"{rss0} / {rss1}"),
]
print("| big map | |\n|---|---:|")
for k, v in rows:
    print(f"| {k} | {v} |")
PY
