# Helpers for the benchmark scripts; sourced (from the repository root,
# with `build` set to the build directory, or empty for bench_build).

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

# bench_cluster DIR OSD_SIZE: a local cluster in DIR (3 monitors, 3 OSDs of
# OSD_SIZE) with a pool rbd of size 3 and 64 PGs and a 1 GiB volume
# `bench`; returns once every PG is active+clean. Sets BASALT_CONF.
bench_cluster() {
	BASALT_BUILD=$build scripts/cluster.sh up --dir "$1" --osd-size "$2" >/dev/null
	export BASALT_CONF=$1/basalt.conf
	"$build/basalt" pool create rbd --size 3 --pg-num 64 >/dev/null
	"$build/basalt" volume create bench --size 1G --pool rbd >/dev/null
	for _ in $(seq 150); do
		"$build/basalt" --json status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["pgs"].get("active+clean")==64 else 1)' && return 0
		sleep 0.2
	done
	echo "bench: the PGs did not become active+clean" >&2
	return 1
}

# bench_nbd LOG: basalt-nbd on a free loopback port, logging to LOG; sets
# nbd_pid and nbd_port once it listens.
bench_nbd() {
	read -r nbd_port < <(scripts/free-ports 1)
	"$build/basalt-nbd" --listen "127.0.0.1:$nbd_port" --log-file "$1" &
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
