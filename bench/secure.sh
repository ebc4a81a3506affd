#!/usr/bin/env bash
# Encrypted cluster links: ms_mode = secure (every messenger link inside
# TLS 1.3, PSK) beside ms_mode = crc, on one local cluster
# (scripts/cluster.sh: 3 monitors, 3 OSDs of 4 GiB, a pool of size 3 with
# 64 PGs, the 1 GiB volume `bench`, written first). Before each side the
# cluster is stopped, its [global] ms_mode set, and started again, and each
# row runs crc, secure, crc, secure (A B A B), so drift on a noisy machine
# hits both.
#
#   bench/secure.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#                   [--baseline DIR]
#
# Rows: 4 KiB random write at QD1 and QD32, 4 KiB random read at QD32,
# 1 MiB sequential write and read at QD4, each through basalt-nbd (fio's
# nbd engine, plain NBD: only the cluster's links change) and through
# libbasalt (bench/volume_load), as bench/run.sh runs them. CPU per I/O:
# every monitor and OSD, and basalt-nbd or volume_load (its own getrusage),
# and the OSDs alone; not fio. About 11 minutes at the default 10 s a side
# (20 restarts of ~5 s each), 4 with --quick.
#
# --baseline DIR compares builds instead of modes: both sides secure, the
# first with Basalt as built in DIR (before a change), the second with
# --build's (after it); the daemons, basalt-nbd and volume_load all come
# from the side's build.
#
# Results, fio's JSON and the table in bench/results/secure-TIME/. Everything
# it starts it stops, by PID (the cluster with scripts/cluster.sh down).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
baseline= args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--baseline) baseline=$(cd "$2" && pwd); shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
bench_more_usage=" [--baseline DIR]"
bench_options secure "${args[@]}"
bench_build
bench_workspace secure
cluster=$work/basalt
rounds=2
restarts=0
# Each side: its name, ms_mode and build.
sides=("crc crc $build" "secure secure $build")
[ -z "$baseline" ] || sides=("before secure $baseline" "after secure $build")

echo "== Basalt: 3 monitors, 3 OSDs of 4G; 1 GiB written" >&2
bench_cluster "$cluster" 4G

# mode_is MODE: the monitors run MODE: a client of the other mode is
# refused (so the setting cannot be silently ignored).
mode_is() {
	local other=crc
	[ "$1" = crc ] && other=secure
	sed "s/^ms_mode = .*/ms_mode = $other/" "$cluster/basalt.conf" >"$cluster/other.conf"
	if "$build/basalt" -c "$cluster/other.conf" --timeout 3 status >/dev/null 2>"$work/other.err" ||
		! grep -q "another ms_mode" "$work/other.err"; then
		echo "bench: a client of ms_mode = $other was not refused by the cluster in $1 mode:" \
			"$(cat "$work/other.err")" >&2
		return 1
	fi
}

# mode_up MODE: the cluster and basalt-nbd stopped, then started (from
# `build`) with ms_mode = MODE; every PG active+clean. Sets nbd_port,
# pid[basalt-nbd], and the PID files $work/pids (monitors and OSDs) and
# $work/pids.osd.
mode_up() {
	if [ -n "${pid[basalt-nbd]:-}" ]; then
		kill "${pid[basalt-nbd]}"
		wait "${pid[basalt-nbd]}" 2>/dev/null || true
		unset 'pid[basalt-nbd]'
	fi
	bench_ms_mode "$cluster" "$1"
	[ -f "$work/checked-$1" ] || { mode_is "$1"; touch "$work/checked-$1"; }
	restarts=$((restarts + 1))
	bench_nbd "$work/basalt-nbd-$restarts.log"
	pid[basalt-nbd]=$nbd_pid
	awk '{print $2}' "$cluster/pids" >"$work/pids"
	awk '$1 ~ /^osd/ {print $2}' "$cluster/pids" >"$work/pids.osd"
}

mode_up crc
fio --name=layout --ioengine=nbd --uri="nbd://127.0.0.1:$nbd_port/bench" --size=1g --rw=write \
	--bs=1m --iodepth=4 --output=/dev/null

# side NAME TARGET ROUND: the row's job (`job`: the fio options) through
# TARGET (nbd-SIDE or native-SIDE), appending to $out/rows what
# bench/run_table.py reads: NAME TARGET ROUND FIO_JSON CPU_SECONDS
# OSD_CPU_SECONDS.
side() {
	local name=$1 target=$2 round=$3 f=$1-$2-$3.json front=() c0 o0 c1 o1 own=0
	[ "${target%%-*}" = nbd ] && front=("$nbd_pid")
	c0=$(cpu_seconds "$work/pids" "${front[@]}") o0=$(cpu_seconds "$work/pids.osd")
	case $target in
	nbd-*) fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$nbd_port/bench" "${job[@]}" \
		--output-format=json --output="$out/$f" >/dev/null ;;
	native-*) bench_child_cpu "$work/load-cpu" "$build/bench/volume_load" -c "$BASALT_CONF" \
		--keyring "$cluster/keyring" --volume bench "${job[@]}" --output="$out/$f" >/dev/null
		own=$(cat "$work/load-cpu") ;;
	esac
	c1=$(cpu_seconds "$work/pids" "${front[@]}") o1=$(cpu_seconds "$work/pids.osd")
	echo "$name $target $round $f $(python3 -c "print($c1 - $c0 + $own, $o1 - $o0)")" >>"$out/rows"
}

: >"$out/rows"
echo 1 >"$out/ramp"
for r in "${bench_link_rows[@]}"; do
	read -r name rw bs qd <<<"$r"
	job=(--rw="$rw" --bs="${bs^^}" --iodepth="$qd" --size=1G --time_based --runtime="$runtime"
		--ramp_time=1)
	for round in $(seq "$rounds"); do
		for s in "${sides[@]}"; do
			read -r label mode build <<<"$s"
			echo "== $name, $label: ms_mode = $mode, $build (round $round of $rounds)" >&2
			mode_up "$mode"
			side "$name" "nbd-$label" "$round"
			side "$name" "native-$label" "$round"
		done
	done
done
python3 bench/secure_table.py "$out" "${sides[0]%% *}" "${sides[1]%% *}" | tee "$out/table.md"
echo "results in $out" >&2
