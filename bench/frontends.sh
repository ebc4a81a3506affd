#!/usr/bin/env bash
# The front ends side by side: the same fio jobs against one volume of a
# local cluster (3 monitors, 3 OSDs, a pool of size 3) through basalt-fuse
# (fio io_uring, direct=1, on MOUNT/volumes/bench) and through basalt-nbd
# (fio's nbd engine), beside fio io_uring direct=1 on a raw file on the same
# disk (writes with fdatasync=1: Basalt answers a write only once all three
# OSDs have it durable). Row by row (raw, NBD, FUSE, next row), so drift on
# a noisy machine hits all three.
#
#   bench/frontends.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Rows: 4 KiB random write and read at QD1 and QD32, 1 MiB sequential
# write and read at QD4, over 1 GiB (prefilled, so reads find data). CPU
# per operation counts the front-end process and every daemon of the
# cluster (from /proc), not fio and not the kernel's FUSE work in fio.
# Needs root (FUSE mount).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_options frontends "$@"
bench_build basalt-fuse
out=bench/results/frontends-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-fe-bench.XXXXXX")
mnt=$cluster/mnt
mkdir -p "$mnt"
fiofile="$dir/basalt-fio-fe.dat"
nbd_pid= fuse_pid=
stop() {
	[ -n "$nbd_pid" ] && { kill "$nbd_pid"; wait "$nbd_pid"; } 2>/dev/null || true
	[ -n "$fuse_pid" ] && { kill "$fuse_pid"; wait "$fuse_pid"; } 2>/dev/null || true
	mountpoint -q "$mnt" && umount -l "$mnt"
	scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1 || true
	rm -f "$fiofile"
}
trap stop EXIT

bench_cluster "$cluster" 4G
bench_nbd "$cluster/nbd.log"
"$build/basalt-fuse" "$mnt" -f --log-file "$cluster/fuse.log" &
fuse_pid=$!
for _ in $(seq 50); do grep -q "mounted on" "$cluster/fuse.log" 2>/dev/null && break; sleep 0.1; done
uri=nbd://127.0.0.1:$nbd_port/bench
file=$mnt/volumes/bench
awk '{print $2}' "$cluster/pids" >"$out/pids-daemons"

echo "== layout: 1 GiB on each side" >&2
bench_fio_layout "$fiofile"
fio --name=layout --filename="$file" --size=1g --rw=write --bs=1m --direct=1 --iodepth=4 \
	--ioengine=io_uring --output=/dev/null

fronts_row() { # NAME: the row through basalt-nbd, then basalt-fuse
	bench_cpu "$out/cpu-nbd-$1.json" "$out/pids-daemons" "$nbd_pid" -- \
		fio --name=job --ioengine=nbd --uri="$uri" "${common[@]}" --output="$out/nbd-$1.json" >/dev/null
	bench_cpu "$out/cpu-fuse-$1.json" "$out/pids-daemons" "$fuse_pid" -- \
		fio --name=job --filename="$file" --direct=1 --ioengine=io_uring "${common[@]}" \
		--output="$out/fuse-$1.json" >/dev/null
}
bench_volume_run "$fiofile" "$out" fronts_row --verify_state_save=0
python3 bench/frontends_table.py "$out" "${bench_volume_rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
