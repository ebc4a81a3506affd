#!/usr/bin/env bash
# A container's fio through basalt-docker beside the same fio through
# basalt-fuse directly, on one local cluster (3 monitors, 3 OSDs, a pool
# of size 3):
#   direct:    basalt-fuse on the host, ext4 on `mount -o loop` of its
#              volume file (the README's recipe by hand: a buffered loop
#              device), fio on the host into a 1 GiB file there;
#   hostdio:   the same on a loop device with direct I/O, as the plugin
#              sets it up (another volume of the same basalt-fuse mount);
#   container: basalt-docker and its own dockerd (vfs, in a mount
#              namespace of their own, as in tests/integration/
#              docker_engine.sh), a container with the volume mounted
#              (--mount ...,volume-driver=basalt) running the same fio
#              (copied into the image with the libraries ldd names).
# Both sides: fio libaio, direct=1 (the ext4 page cache bypassed; the
# loop device and basalt-fuse below are the same path), the rows of
# bench_volume_rows, A B A B: direct, hostdio, container, then again, per row.
#
#   bench/docker.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Needs root (FUSE, loop devices, dockerd). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. tests/integration/docker_lib.sh
bench_options docker "$@"
bench_build basalt-fuse basalt-docker
out=bench/results/docker-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-docker-bench.XXXXXX")
mnt=$cluster/fuse ext=$cluster/ext dio=$cluster/dio node=$cluster/node image=basalt-fio:1
mkdir -p "$mnt" "$ext" "$dio" "$node"
fuse_pid= plugin_pid= docker_pid= holder= dio_loop=
stop() {
	set +e
	[ -n "$docker_pid" ] && { kill "$docker_pid"; wait "$docker_pid"; } 2>/dev/null
	[ -n "$plugin_pid" ] && { kill "$plugin_pid"; wait "$plugin_pid"; } 2>/dev/null
	if [ -e "$node/state/state.json" ]; then
		for p in $(python3 -c 'import json,sys; [print(m["fuse_pid"]) for m in json.load(open(sys.argv[1]))["mounts"].values()]' "$node/state/state.json"); do
			kill "$p"
		done
	fi
	[ -n "$holder" ] && { kill "$holder"; wait "$holder"; } 2>/dev/null
	mountpoint -q "$ext" && umount "$ext"
	mountpoint -q "$dio" && umount "$dio"
	[ -n "$dio_loop" ] && losetup -d "$dio_loop"
	[ -n "$fuse_pid" ] && { kill "$fuse_pid"; wait "$fuse_pid"; } 2>/dev/null
	for m in $(awk -v d="$cluster" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m"
	done
	scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1
}
trap stop EXIT

bench_cluster "$cluster" 8G rbd
"$build/basalt" volume create direct --size 1536M >/dev/null
"$build/basalt" volume create hostdio --size 1536M >/dev/null

# --- direct and hostdio: basalt-fuse, ext4, loop mounts on the host ---
"$build/basalt-fuse" "$mnt" -f --log-file "$cluster/fuse.log" &
fuse_pid=$!
for _ in $(seq 50); do grep -q "mounted on" "$cluster/fuse.log" 2>/dev/null && break; sleep 0.1; done
mkfs.ext4 -q -E nodiscard "$mnt/volumes/direct"
mount -o loop "$mnt/volumes/direct" "$ext"
mkfs.ext4 -q -E nodiscard "$mnt/volumes/hostdio"
dio_loop=$(losetup --direct-io=on --find --show "$mnt/volumes/hostdio")
mount "$dio_loop" "$dio"

# --- container: the plugin and an engine in a mount namespace ---
docker_ns_start "$node" || { echo "docker.sh: no mount namespace for the node" >&2; exit 1; }
holder=$ns_holder
nsenter -t "$holder" -m -- "$build/basalt-docker" -f -c "$BASALT_CONF" --state-dir "$node/state" \
	--log-file "$cluster/plugin.log" &
plugin_pid=$!
docker_engine_start "$holder" "$node" "$cluster/docker.log"
docker_pid=$ns_dockerd
dk() { docker -H "unix://$node/docker.sock" "$@"; }
for _ in $(seq 100); do dk info >/dev/null 2>&1 && break; sleep 0.2; done

echo "== image: busybox and fio with its libraries" >&2
root=$cluster/root
mkdir -p "$root/bin" "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
cp -L --parents /usr/bin/fio "$root"
for lib in $(ldd /usr/bin/fio | grep -o '/[^ ]*'); do cp -L --parents "$lib" "$root"; done
tar -C "$root" -c . | dk import - "$image" >/dev/null
dk volume create -d basalt --opt size=1536M dvol >/dev/null
dk run -d --name fio-box --mount type=volume,source=dvol,target=/data,volume-driver=basalt \
	"$image" sleep 1000000 >/dev/null

echo "== layout: 1 GiB on each side" >&2
layout=(--name=layout --size=1g --rw=write --bs=1m --direct=1 --ioengine=libaio --iodepth=4
	--output=/dev/null)
fio "${layout[@]}" --filename="$ext/fio.dat"
fio "${layout[@]}" --filename="$dio/fio.dat"
dk exec fio-box fio "${layout[@]}" --filename=/data/fio.dat

for round in 1 2; do
	for r in "${bench_volume_rows[@]}"; do
		read -r name rw bs qd <<<"$r"
		echo "== round $round: $name" >&2
		common=(--name=job --rw="$rw" --bs="$bs" --iodepth="$qd" --size=1g --direct=1
			--ioengine=libaio --time_based --runtime="$runtime" --ramp_time=1
			--output-format=json)
		fio "${common[@]}" --filename="$ext/fio.dat" >"$out/direct-$name-$round.json"
		fio "${common[@]}" --filename="$dio/fio.dat" >"$out/hostdio-$name-$round.json"
		dk exec fio-box fio "${common[@]}" --filename=/data/fio.dat >"$out/container-$name-$round.json"
	done
done
python3 bench/docker_table.py "$out" "${bench_volume_rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
