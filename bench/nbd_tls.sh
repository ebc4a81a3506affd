#!/usr/bin/env bash
# NBD over TLS beside plain NBD: fio's nbd engine against one basalt-nbd
# (--tls on, X.509 from tests/integration/tls_certs.sh) serving a volume
# of the local cluster scripts/cluster.sh up starts (3 monitors, 3 OSDs,
# a pool of size 3), each row plain then over TLS (A B A B), so drift on a
# noisy machine hits both.
#
#   bench/nbd_tls.sh [--runtime S] [--dir DIR] [--quick] [--build DIR]
#
# Rows: 4 KiB random write at QD1 and QD32, 4 KiB random read at QD32,
# 1 MiB sequential write and read at QD4, over the 1 GiB volume
# (prefilled, so reads find data). CPU per operation: basalt-nbd's own
# (where TLS costs), and basalt-nbd with every daemon of the cluster
# (from /proc), not fio.
#
# fio's nbd engine connects with nbd_connect_uri, which takes no
# tls-certificates from a URI unless the program allows local files (fio
# does not); libnbd then looks for $HOME/.pki/libnbd/ca-cert.pem, for
# users other than root only. So the TLS side runs fio as nobody (when
# run as root) with HOME a directory holding the test CA.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_options nbd_tls "$@"
bench_build
out=bench/results/nbd_tls-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
cluster=$(mktemp -d "$dir/basalt-nbd-tls-bench.XXXXXX")
nbd_pid=
stop() {
	[ -n "$nbd_pid" ] && { kill "$nbd_pid"; wait "$nbd_pid"; } 2>/dev/null || true
	scripts/cluster.sh down --dir "$cluster" --purge >/dev/null 2>&1 || true
}
trap stop EXIT

tests/integration/tls_certs.sh "$cluster/certs" >/dev/null
mkdir -p "$cluster/home/.pki/libnbd"
cp "$cluster/certs/ca-cert.pem" "$cluster/home/.pki/libnbd/"
chmod -R a+rX "$cluster/home"
mkdir -p "$cluster/fio" # where fio, perhaps as nobody, writes its JSON
chmod 1777 "$cluster/fio"
chmod a+x "$cluster"
tls_fio=(env HOME="$cluster/home" fio)
[ "$(id -u)" = 0 ] && tls_fio=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${tls_fio[@]}")

bench_cluster "$cluster" 4G
bench_nbd "$cluster/nbd.log" --tls on --tls-certificates "$cluster/certs"
plain=nbd://127.0.0.1:$nbd_port/bench
tls=nbds://127.0.0.1:$nbd_port/bench
awk '{print $2}' "$cluster/pids" >"$out/pids"
echo "$nbd_pid" >>"$out/pids"

echo "== layout: 1 GiB" >&2
fio --name=layout --ioengine=nbd --uri="$plain" --size=1g --rw=write --bs=1m --iodepth=4 \
	--output=/dev/null
"${tls_fio[@]}" --name=probe --ioengine=nbd --uri="$tls" --size=1m --rw=read --bs=4k \
	--output=/dev/null || { echo "bench: fio cannot reach $tls" >&2; exit 1; }
grep -q "TLS up" "$cluster/nbd.log" || { echo "bench: the TLS probe did not use TLS" >&2; exit 1; }

# side NAME SIDE URI FIO...: one run of FIO (the program) against URI,
# fio's JSON in SIDE-NAME.json and the CPU seconds of basalt-nbd and of
# everything in cpu-SIDE-NAME.json.
side() {
	local name=$1 which=$2 uri=$3 n0 a0 n1 a1
	shift 3
	n0=$(cpu_seconds - "$nbd_pid") a0=$(cpu_seconds "$out/pids")
	"$@" --name=job --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$qd" --size=1g \
		--time_based --runtime="$runtime" --ramp_time=1 --output-format=json \
		--output="$cluster/fio/$which-$name.json" >/dev/null
	n1=$(cpu_seconds - "$nbd_pid") a1=$(cpu_seconds "$out/pids")
	mv "$cluster/fio/$which-$name.json" "$out/"
	python3 -c "import json; print(json.dumps({'nbd_cpu_s': $n1 - $n0, 'cpu_s': $a1 - $a0}))" \
		>"$out/cpu-$which-$name.json"
}
for r in "${bench_link_rows[@]}"; do
	read -r name rw bs qd <<<"$r"
	echo "== $name" >&2
	side "$name" plain "$plain" fio
	side "$name" tls "$tls" "${tls_fio[@]}"
done
python3 bench/nbd_tls_table.py "$out" "${bench_link_rows[@]}" | tee "$out/table.md"
echo "results in $out" >&2
