# Helpers for the benchmark scripts; sourced (from the repository root,
# with `build` set to the build directory, or empty for bench_build).

# bench_options NAME "$@": the options of the A B A B benchmarks (store,
# objects, nbd, frontends). Sets runtime (10 s; --quick: 2 s), dir
# (/var/tmp) and build (--build DIR: Basalt as built there; default:
# bench_build builds build/); anything else is a usage error (exit 2),
# whose message ends with bench_more_usage (the caller's own options).
bench_options() {
	local name=$1
	shift
	runtime=10 dir=/var/tmp build=
	while [ $# -gt 0 ]; do
		case "$1" in
		--runtime) runtime=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		--quick) runtime=2; shift ;;
		--build) build=$2; shift 2 ;;
		*) echo "usage: bench/$name.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]${bench_more_usage:-}" >&2
		   exit 2 ;;
		esac
	done
}

# bench_build [TARGET...]: with `build` empty, installs the dependencies
# and builds in build/ the daemons, the CLI, basalt-nbd, volume_load and
# the TARGETs; then makes `build` an absolute path.
bench_build() {
	if [ -z "$build" ]; then
		scripts/install-deps.sh
		cmake -S . -B build -G Ninja >/dev/null
		ninja -C build basalt basalt-mon basalt-osd basalt-nbd volume_load "$@" >/dev/null
		build=build
	fi
	build=$(cd "$build" && pwd)
}

# bench_cluster DIR OSD_SIZE [POOL]: a local cluster in DIR (3 monitors, 3
# OSDs of OSD_SIZE) with a pool POOL of size 3 and 64 PGs; without POOL,
# pool rbd with a 1 GiB volume `bench`; returns once every PG is
# active+clean. Sets BASALT_CONF.
bench_cluster() {
	BASALT_BUILD=$build scripts/cluster.sh up --dir "$1" --osd-size "$2" >/dev/null
	export BASALT_CONF=$1/basalt.conf
	"$build/basalt" pool create "${3:-rbd}" --size 3 --pg-num 64 >/dev/null
	[ -n "${3:-}" ] || "$build/basalt" volume create bench --size 1G --pool rbd >/dev/null
	bench_wait_clean
}

# bench_wait_clean [PGS]: returns once PGS PGs (64) of the cluster of
# BASALT_CONF are active+clean (30 s at most: then fails).
bench_wait_clean() {
	for _ in $(seq 150); do
		"$build/basalt" --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["pgs"].get("active+clean")==int(sys.argv[1]) else 1)' "${1:-64}" && return 0
		sleep 0.2
	done
	echo "bench: the PGs did not become active+clean" >&2
	return 1
}

# bench_ms_mode DIR MODE: the cluster of bench_cluster in DIR stopped and
# started again with ms_mode = MODE (crc or secure) in its [global];
# returns once every PG is active+clean. Its clients (basalt-nbd) are to be
# stopped before and started again after.
bench_ms_mode() {
	scripts/cluster.sh down --dir "$1" >/dev/null
	if grep -q '^ms_mode = ' "$1/basalt.conf"; then
		sed -i "s/^ms_mode = .*/ms_mode = $2/" "$1/basalt.conf"
	else
		sed -i "/^\[global\]$/a ms_mode = $2" "$1/basalt.conf"
	fi
	BASALT_BUILD=$build scripts/cluster.sh up --dir "$1" >/dev/null
	bench_wait_clean
}

# bench_nbd LOG [ARG...]: basalt-nbd on a free loopback port, logging to
# LOG, with ARGs; sets nbd_pid and nbd_port once it listens.
bench_nbd() {
	read -r nbd_port < <(scripts/free-ports 1)
	"$build/basalt-nbd" --listen "127.0.0.1:$nbd_port" --log-file "$@" &
	nbd_pid=$!
	for _ in $(seq 50); do grep -q "listening on" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "bench: basalt-nbd did not start" >&2
	return 1
}

# cpu_seconds FILE [PID...]: the CPU seconds (user + system) used so far by
# the PIDs listed in FILE ("-" for none) and by the PIDs given; a process
# gone counts nothing.
cpu_seconds() {
	python3 -c 'import os,sys
hz = os.sysconf("SC_CLK_TCK"); t = 0
pids = (open(sys.argv[1]).read().split() if sys.argv[1] != "-" else []) + sys.argv[2:]
for p in pids:
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        t += (int(f[11]) + int(f[12])) / hz
    except FileNotFoundError:
        pass
print(t)' "$@"
}

# switches PIDS_FILE|- [PID...]: the context switches (voluntary and not)
# of every thread of those processes so far — how often they went to
# sleep and woke up. Threads that exited (io_uring's io-wq workers come
# and go) no longer count.
switches() {
	python3 -c 'import glob, sys
n = 0
pids = (open(sys.argv[1]).read().split() if sys.argv[1] != "-" else []) + sys.argv[2:]
for p in pids:
    for st in glob.glob(f"/proc/{p}/task/*/status"):
        try:
            for line in open(st):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    n += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
print(n)' "$@"
}

# bench_child_cpu FILE COMMAND...: runs COMMAND and writes to FILE the CPU
# seconds (user + system) it and its children used: the load generator's
# own, where a client library runs in it (volume_load, fio's rbd engine).
# Returns COMMAND's status.
bench_child_cpu() {
	python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(str(u.ru_utime + u.ru_stime))
sys.exit(rc)' "$@"
}

# bench_fio_layout FILE: 1 GiB written to FILE, so reads find data and
# writes overwrite, as on the Basalt side.
bench_fio_layout() {
	fio --name=layout --filename="$1" --size=1g --rw=write --bs=1m --direct=1 \
		--ioengine=io_uring --output=/dev/null
}

# bench_fio_file FILE JSON RW BS QD SYNC [FIO OPTION...]: the raw-file side
# of a row: fio io_uring, direct=1, over FILE's 1 GiB for `runtime` s,
# with fdatasync=1 when SYNC is 1; fio's JSON in JSON.
bench_fio_file() {
	local file=$1 json=$2 rw=$3 bs=$4 qd=$5 sync=$6
	shift 6
	fio --name=job --filename="$file" --size=1g --rw="$rw" --bs="$bs" --iodepth="$qd" \
		--direct=1 --ioengine=io_uring --time_based --runtime="$runtime" --ramp_time=1 \
		$([ "$sync" = 1 ] && echo --fdatasync=1) --output-format=json "$@" >"$json"
}

# bench_cpu JSON PIDFILE [PID...] -- COMMAND...: runs COMMAND and writes
# the CPU seconds the PIDs (those in PIDFILE and those given) used
# meanwhile to JSON as {"cpu_s": S}.
bench_cpu() {
	local json=$1 pids=() c0 c1
	shift
	while [ "$1" != -- ]; do pids+=("$1"); shift; done
	shift
	c0=$(cpu_seconds "${pids[@]}")
	"$@"
	c1=$(cpu_seconds "${pids[@]}")
	echo "{\"cpu_s\": $(python3 -c "print($c1 - $c0)")}" >"$json"
}

# The rows of the volume benchmarks (nbd.sh, frontends.sh): name fio-rw bs
# qd. 4 KiB random write and read at QD1 and QD32, 1 MiB sequential write
# and read at QD4.
bench_volume_rows=(
	"4k-randwrite-qd1 randwrite 4k 1"
	"4k-randwrite-qd32 randwrite 4k 32"
	"4k-randread-qd1 randread 4k 1"
	"4k-randread-qd32 randread 4k 32"
	"1m-write-qd4 write 1m 4"
	"1m-read-qd4 read 1m 4"
)

# The rows of the benchmarks of encrypted links (nbd_tls.sh, secure.sh):
# those of bench_volume_rows but the 4 KiB random read at QD1.
bench_link_rows=(
	"4k-randwrite-qd1 randwrite 4k 1"
	"4k-randwrite-qd32 randwrite 4k 32"
	"4k-randread-qd32 randread 4k 32"
	"1m-write-qd4 write 1m 4"
	"1m-read-qd4 read 1m 4"
)

# bench_volume_run FIOFILE OUT FRONT [FIO OPTION...]: for each row of
# bench_volume_rows, fio on the raw FIOFILE (writes with fdatasync=1) into
# OUT/fio-NAME.json, then `FRONT NAME` for the Basalt side(s), with
# `common` set to the row's fio options (the FIO OPTIONs added) that
# every side runs with.
bench_volume_run() {
	local fiofile=$1 out=$2 front=$3 r name rw bs qd
	shift 3
	for r in "${bench_volume_rows[@]}"; do
		read -r name rw bs qd <<<"$r"
		echo "== $name" >&2
		common=(--rw="$rw" --bs="$bs" --iodepth="$qd" --size=1g --time_based
			--runtime="$runtime" --ramp_time=1 --output-format=json "$@")
		bench_fio_file "$fiofile" "$out/fio-$name.json" "$rw" "$bs" "$qd" \
			"$([ "${rw%write}" != "$rw" ] && echo 1 || echo 0)" "$@"
		"$front" "$name"
	done
}

# bench_space_used SYSTEM: the raw bytes the OSDs of SYSTEM (basalt...:
# the cluster of BASALT_CONF; ceph...: of CEPH_CONF) use, every copy or
# chunk, metadata and journals included (SYSTEM may name a pool kind:
# basalt-ec, the same cluster).
bench_space_used() {
	case $1 in
	basalt*) "$build/basalt" --json status |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["usage"]["used_bytes"])' ;;
	ceph*) ceph df -f json 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["stats"]["total_used_raw_bytes"])' ;;
	esac
}

# bench_space_data SYSTEM: the part of bench_space_used that is objects'
# data: for Ceph, BlueStore's (kb_used_data of `ceph osd df`: every copy
# or chunk, without RocksDB and BlueFS, which grow and shrink as they
# compact); for Basalt "-": the rest of its figure, the journal and
# metadata areas, is of fixed size.
bench_space_data() {
	case $1 in
	basalt*) echo - ;;
	ceph*) ceph osd df -f json 2>/dev/null |
		python3 -c 'import json, sys; print(sum(n["kb_used_data"] for n in json.load(sys.stdin)["nodes"]) * 1024)' ;;
	esac
}

# bench_space_step SYSTEM STEP SETTLE: prints "SYSTEM STEP USED_BYTES
# SECONDS_UNTIL_THE_LAST_CHANGE DATA_BYTES" (bench_space_data) once the
# figure held still for SETTLE s (read every second, at most 90 s:
# Basalt's OSDs report usage every 2 s, Ceph's every 5 s, and Ceph trims
# snapshots in the background).
bench_space_step() {
	local t0=$SECONDS last changed=$SECONDS now
	last=$(bench_space_used "$1")
	while [ $((SECONDS - changed)) -lt "$3" ] && [ $((SECONDS - t0)) -lt 90 ]; do
		sleep 1
		now=$(bench_space_used "$1")
		[ "$now" = "$last" ] || { last=$now changed=$SECONDS; }
	done
	echo "$1 $2 $last $((changed - t0)) $(bench_space_data "$1")"
}

# bench_workspace NAME: the results directory bench/results/NAME-TIME
# (`out`), a work directory under `dir` (`work`), the PIDs it records in
# `pid` by name, and a trap that stops them, the Basalt cluster in
# $work/basalt and the Ceph cluster in $work/ceph, and removes `work`.
bench_workspace() {
	out=bench/results/$1-$(date -u +%Y%m%dT%H%M%SZ)
	mkdir -p "$out"
	work=$(mktemp -d "$dir/basalt-bench-$1.XXXXXX")
	declare -gA pid
	trap bench_stop EXIT
}
bench_stop() {
	for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
	scripts/cluster.sh down --dir "$work/basalt" --purge >/dev/null 2>&1 || true
	[ -d "$work/ceph" ] && bench/ceph.sh down --dir "$work/ceph" >/dev/null 2>&1 || true
	rm -rf "$work"
}
