#!/usr/bin/env bash
# Prometheus metrics on a local cluster (3 monitors, 3 OSDs) with
# metrics_addr on each, basalt-nbd, basalt-fuse and basalt-docker with
# --metrics-addr:
#  - every endpoint passes promtool check metrics with nothing to say;
#    another path is 404, another method 405;
#  - a real Prometheus scrapes them all (every target up), and after
#    8 MiB written through NBD and 8 MiB through the FUSE file (and the NBD
#    ones read back) its queries show the NBD, FUSE and OSD byte counters
#    grown by at least that (OSDs: three copies), and a p99 from a histogram;
#    a volume created through basalt-docker counted in its calls;
#  - every metric the Grafana dashboard's expressions use is exported;
#  - a bad metrics_addr (monitor, basalt-nbd) and one whose port is in use
#    (OSD, basalt-fuse) stop start-up with an error naming metrics_addr.
#   metrics.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: metrics.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-metrics.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mnt=$dir/mnt
mkdir -p "$mnt"
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && { fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; }
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for t in promtool prometheus curl qemu-io fusermount3; do
	command -v "$t" >/dev/null || fail "$t is missing (scripts/install-deps.sh installs it)"
done

# Ports: mon.a-c, osd.0-2, nbd, fuse, docker, prometheus.
read -r pa pb pc p0 p1 p2 pn pf pd pp < <(free_ports 10)
cluster_conf_local
osd_conf_local 256M h0 h1 h2
conf=$dir/basalt.conf
for s in "mon.a $pa" "mon.b $pb" "mon.c $pc" "osd.0 $p0" "osd.1 $p1" "osd.2 $p2"; do
	set -- $s
	sed -i "/^\[${1/./\\.}\]\$/a metrics_addr = 127.0.0.1:$2" "$conf"
done
grep -c '^metrics_addr' "$conf" | grep -qx 6 || fail "metrics_addr not in every daemon's section"

# --- refused addresses (before anything runs) ---
sed 's/^metrics_addr = 127.0.0.1:'"$pa"'$/metrics_addr = 127.0.0.1/' "$conf" >"$dir/bad.conf"
out=$("$build/basalt-mon" --id a -c "$dir/bad.conf" --keyring "$dir/keyring" 2>&1) &&
	fail "basalt-mon started with metrics_addr = 127.0.0.1"
echo "$out" | grep -q "\[mon.a\] metrics_addr: metrics_addr '127.0.0.1' must be HOST:PORT" ||
	fail "bad metrics_addr: $out"
echo "refused: $out"

mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2; do osd_start "$i"; done
wait_for "s['osd']['up']==3" 20 "OSDs up"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vn --size 64M >/dev/null
cli volume create vf --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# A second osd.0 whose metrics port is mon.a's: refused before its store.
sed "s/^metrics_addr = 127.0.0.1:$p0\$/metrics_addr = 127.0.0.1:$pa/" "$conf" >"$dir/busy.conf"
out=$("$build/basalt-osd" --id 0 -c "$dir/busy.conf" --keyring "$dir/keyring" 2>&1) &&
	fail "a second osd.0 started on a port in use"
echo "$out" | grep -q "\[osd.0\] metrics_addr: metrics_addr 127.0.0.1:$pa: cannot listen: Address already in use" ||
	fail "port in use: $out"
echo "refused: $out"
out=$("$build/basalt-nbd" -c "$conf" --listen 127.0.0.1:1 --metrics-addr '[::1' 2>&1) &&
	fail "basalt-nbd started with --metrics-addr [::1"
echo "$out" | grep -q -- "--metrics-addr: metrics_addr '\[::1': an IPv6 address goes in \[brackets\]" || fail "nbd: $out"
echo "refused: $out"
out=$("$build/basalt-fuse" "$mnt" -f -c "$conf" --metrics-addr "127.0.0.1:$pb" 2>&1) &&
	fail "basalt-fuse started on a port in use"
echo "$out" | grep -q -- "--metrics-addr: metrics_addr 127.0.0.1:$pb: cannot listen: Address already in use" ||
	fail "fuse: $out"
mountpoint -q "$mnt" && fail "basalt-fuse mounted despite the refused metrics_addr"
echo "refused: $out"

nbd_start --metrics-addr "127.0.0.1:$pn"
fuse_start fuse "$mnt" --metrics-addr "127.0.0.1:$pf"
grep -q "metrics served on http://127.0.0.1:$pf/metrics" "$dir/fuse.log" || fail "fuse: no metrics"
"$build/basalt-docker" -f -c "$conf" --socket "$dir/docker.sock" --state-dir "$dir/docker" \
	--log-file "$dir/docker.log" --metrics-addr "127.0.0.1:$pd" &
pid[docker]=$!
for _ in $(seq 100); do grep -q "serving Docker" "$dir/docker.log" 2>/dev/null && break; sleep 0.1; done
grep -q "metrics served on http://127.0.0.1:$pd/metrics" "$dir/docker.log" || fail "docker: no metrics"

# --- every endpoint: valid exposition, nothing for promtool to say ---
ports="$pa $pb $pc $p0 $p1 $p2 $pn $pf $pd"
for p in $ports; do
	curl -sf -D "$dir/head.$p" "http://127.0.0.1:$p/metrics" >"$dir/scrape.$p" || fail "GET :$p/metrics"
	grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$dir/head.$p" ||
		fail ":$p content type: $(cat "$dir/head.$p")"
	lint=$(promtool check metrics <"$dir/scrape.$p" 2>&1) || fail "promtool on :$p: $lint"
	[ -z "$lint" ] || fail "promtool on :$p says: $lint"
	grep -q '^basalt_build_info{version="[^"]*"} 1$' "$dir/scrape.$p" || fail ":$p has no build_info"
done
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "http://127.0.0.1:$p0/")" = 404 ] || fail "/ is not 404"
[ "$(code "http://127.0.0.1:$pn/metricsx")" = 404 ] || fail "/metricsx is not 404"
[ "$(code -X POST "http://127.0.0.1:$pa/metrics")" = 405 ] || fail "POST is not 405"
[ "$(code -X DELETE "http://127.0.0.1:$pf/metrics")" = 405 ] || fail "DELETE is not 405"

# --- the dashboard uses only exported metrics ---
cat "$dir"/scrape.* | sed -n 's/^# TYPE \([^ ]*\) .*/\1/p' | sort -u >"$dir/exported"
python3 - "$src/docs/grafana/basalt.json" "$dir/exported" <<'PY' || fail "the dashboard drifted"
import json, re, sys
dash = json.load(open(sys.argv[1]))
exported = set(open(sys.argv[2]).read().split())
exprs = []
def walk(x):
    if isinstance(x, dict):
        if isinstance(x.get("expr"), str):
            exprs.append(x["expr"])
        for v in x.values():
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(dash)
used = {n for e in exprs for n in re.findall(r"\bbasalt_[a-z0-9_]+", e)}
# A histogram's series are NAME_bucket, NAME_sum and NAME_count.
missing = sorted(n for n in used
                 if n not in exported and re.sub(r"_(bucket|sum|count)$", "", n) not in exported)
print(f"dashboard: {len(exprs)} expressions, {len(used)} metrics, all exported" if not missing else f"not exported: {missing}")
sys.exit(1 if missing or not used else 0)
PY

# --- a real Prometheus scrapes every daemon ---
targets=$(for p in $ports; do printf "'127.0.0.1:%s'," "$p"; done)
cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: basalt
    static_configs:
      - targets: [${targets%,}]
EOF
promtool check config "$dir/prometheus.yml" >/dev/null || fail "prometheus.yml"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
	--web.listen-address="127.0.0.1:$pp" >"$dir/prometheus.log" 2>&1 &
pid[prometheus]=$!
api=http://127.0.0.1:$pp/api/v1
up=0
for _ in $(seq 150); do
	up=$(curl -sf "$api/targets" 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
print(sum(x["health"] == "up" for x in t))' 2>/dev/null) || up=0
	[ "$up" = 9 ] && break
	sleep 0.2
done
[ "$up" = 9 ] || fail "Prometheus: $up of 9 targets up: $(curl -s "$api/targets")"
echo "Prometheus: 9 of 9 targets up"

# query EXPR: its one value (0 when empty).
query() {
	curl -sf "$api/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(int(float(r[0]["value"][1])) if r else 0)'
}
counters='sum(basalt_osd_written_bytes_total) sum(basalt_nbd_written_bytes_total) sum(basalt_nbd_read_bytes_total) sum(basalt_fuse_written_bytes_total) sum(basalt_docker_requests_total{op="create"})'
# Baselines once Prometheus has every target's first sample of them.
for _ in $(seq 50); do
	[ "$(query 'count(basalt_osd_written_bytes_total) + count(basalt_nbd_read_bytes_total) + count(basalt_fuse_written_bytes_total)')" = 5 ] && break
	sleep 0.2
done
declare -A before
for c in $counters; do before[$c]=$(query "$c"); done

mib=$((1 << 20))
qemu-io -f raw -c "write -P 7 0 8M" -c "read -P 7 0 8M" "$uri/vn" >/dev/null || fail "qemu-io"
dd if=/dev/urandom of="$mnt/volumes/vf" bs=1M count=8 conv=notrunc,fsync status=none || fail "dd"
curl -sf --unix-socket "$dir/docker.sock" -X POST -d '{"Name": "vd", "Opts": {"size": "16M"}}' \
	http://plugin/VolumeDriver.Create | grep -q '"Err":""' || fail "basalt-docker Create"

# want EXPR BYTES: the counter grows by at least BYTES within 15 s.
want() {
	local now=0
	for _ in $(seq 75); do
		now=$(query "$1")
		[ $((now - ${before[$1]})) -ge "$2" ] && { echo "$1: +$((now - ${before[$1]}))"; return 0; }
		sleep 0.2
	done
	fail "$1 grew by $((now - ${before[$1]})), not at least $2"
}
want 'sum(basalt_nbd_written_bytes_total)' $((8 * mib))
want 'sum(basalt_nbd_read_bytes_total)' $((8 * mib))
want 'sum(basalt_fuse_written_bytes_total)' $((8 * mib))
want 'sum(basalt_osd_written_bytes_total)' $((3 * 16 * mib)) # every byte on three OSDs
want 'sum(basalt_docker_requests_total{op="create"})' 1
p99=$(curl -sf "$api/query" --data-urlencode \
	'query=histogram_quantile(0.99, sum by (le) (rate(basalt_osd_op_latency_seconds_bucket{op="write"}[1m])))' |
	python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')
python3 -c "import sys; v=float(sys.argv[1]); sys.exit(0 if 0 < v < 100 else 1)" "$p99" 2>/dev/null ||
	fail "OSD write p99 from Prometheus: $p99"
echo "OSD write p99: $p99 s"
[ "$(query 'max(basalt_mon_osds_up)')" = 3 ] || fail "basalt_mon_osds_up is not 3"
[ "$(query 'sum(basalt_mon_is_leader)')" = 1 ] || fail "not exactly one monitor leads"
[ "$(query 'sum(basalt_osd_pgs{state="active"})')" = 16 ] || fail "not 16 active PGs"
# A daemon serving metrics still stops cleanly on SIGTERM: its metrics
# thread must not take the signal (the default action would end it with
# status 143 and no clean stop — an OSD would lose its PG logs).
for name in nbd osd.0 mon.a; do
	kill -TERM "${pid[$name]}"
	st=0
	wait "${pid[$name]}" || st=$?
	unset "pid[$name]"
	[ "$st" = 0 ] || fail "$name exited with status $st on SIGTERM"
done
echo "metrics: OK"
