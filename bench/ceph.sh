#!/usr/bin/env bash
# A Ceph 16 cluster on this machine, for side-by-side benchmarks: one
# monitor, one manager and three BlueStore OSDs on files of the same size
# (one host, so `osd crush chooseleaf type = 0` lets three replicas fit),
# cephx on, a pool `rbd` of size 3. Everything under one directory; the
# daemons run in the foreground of their own background processes and are
# stopped by the PIDs recorded in DIR/pids.
#
#   bench/ceph.sh up   [--dir DIR] [--osd-size SIZE] [--pg-num N] [--ec K+M]
#   bench/ceph.sh down [--dir DIR]
#
# up      installs what of Ceph (and qemu's rbd driver) is missing from
#         Debian's packages, writes
#         DIR/ceph.conf and DIR/keyring, makes and starts the daemons,
#         creates the pool (and an RBD image `bench` of 1 GiB), and waits
#         for HEALTH_OK or every PG active+clean. Defaults: DIR
#         /var/tmp/ceph-bench, 4G per OSD, 64 PGs.
#         --ec K+M also makes an erasure-coded pool `ec` (profile `ec`:
#         k=K m=M, one chunk per OSD, allow_ec_overwrites, N PGs) and an
#         image `bench-ec` of 1 GiB in `rbd` whose data goes to `ec`
#         (rbd create --data-pool ec).
# down    stops exactly the recorded PIDs and removes DIR.
#
# Use it with: ceph -c DIR/ceph.conf -s; rbd -c DIR/ceph.conf ls
set -euo pipefail
cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
dir=/var/tmp/ceph-bench osd_size=4G pg_num=64 ec=
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--pg-num) pg_num=$2; shift 2 ;;
	--ec) ec=$2; shift 2 ;;
	*) echo "ceph.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
# Three OSDs: K+M chunks of an object must fit on them, one each.
[ -z "$ec" ] || [[ $ec =~ ^([1-9])\+([1-9])$ && $((BASH_REMATCH[1] + BASH_REMATCH[2])) -le 3 ]] ||
	{ echo "ceph.sh: --ec takes K+M with K+M at most 3 (one chunk per OSD), e.g. 2+1" >&2; exit 2; }
conf=$dir/ceph.conf
c() { ceph -c "$conf" "$@"; }

down() {
	if [ -f "$dir/pids" ]; then
		while read -r name p; do kill "$p" 2>/dev/null || true; done <"$dir/pids"
		for _ in $(seq 50); do
			alive=0
			while read -r name p; do kill -0 "$p" 2>/dev/null && alive=1; done <"$dir/pids"
			[ $alive = 0 ] && break
			sleep 0.2
		done
		while read -r name p; do kill -9 "$p" 2>/dev/null || true; done <"$dir/pids"
	fi
	rm -rf "$dir"
}

if [ "$cmd" = down ]; then
	down
	exit 0
fi
[ "$cmd" = up ] || { echo "ceph.sh: up or down" >&2; exit 2; }

# Each package is checked, not only ceph-osd: the suite's dependencies
# bring Ceph for radosgw, but not qemu's rbd driver, without which
# qemu-nbd cannot open the image.
"$(dirname "$0")/../scripts/install-deps.sh" --only ceph-mon ceph-mgr ceph-osd ceph-common \
	rbd-nbd qemu-block-extra uuid-runtime
[ -e "$dir" ] && { echo "ceph.sh: $dir exists (ceph.sh down --dir $dir first)" >&2; exit 1; }
mkdir -p "$dir"/{run,log,mon,mgr,osd}
: >"$dir/pids"
fsid=$(uuidgen)
read -r port2 port1 < <("$(dirname "$0")/../scripts/free-ports" 2)
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port2,v1:127.0.0.1:$port1]
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
osd pool default size = 3
osd pool default min size = 2
osd crush chooseleaf type = 0
mon allow pool delete = true
auth allow insecure global id reclaim = false
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
[client]
# Durable writes only, like Basalt's: librbd's cache would acknowledge
# writes before any OSD has them (2,805 "IOPS" at 4 KiB QD1 here, against
# 410 with it off).
rbd cache = false
# One admin socket per client process: fio, qemu-nbd and rbd run side by side.
admin socket = $dir/run/\$name.\$pid.\$cctid.asok
[mon]
mon data = $dir/mon/\$cluster-\$id
[mgr]
mgr data = $dir/mgr/\$cluster-\$id
keyring = $dir/mgr/\$cluster-\$id/keyring
[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = $dir/osd/\$cluster-\$id/keyring
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $(numfmt --from=iec "$osd_size")
osd memory target = 1073741824
EOF
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	--cap mgr 'allow *' --cap mds 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port2,v1:127.0.0.1:$port1]" \
	"$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
start() { # start NAME COMMAND...: in the foreground of a background process
	local name=$1
	shift
	"$@" -f >>"$dir/log/$name.out" 2>&1 &
	echo "$name $!" >>"$dir/pids"
}
start mon.a ceph-mon -c "$conf" -i a
for _ in $(seq 100); do c -s >/dev/null 2>&1 && break; sleep 0.2; done
c -s >/dev/null || { echo "ceph.sh: the monitor did not come up" >&2; exit 1; }
mkdir -p "$dir/mgr/ceph-x"
c auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
	>"$dir/mgr/ceph-x/keyring"
start mgr.x ceph-mgr -c "$conf" -i x
for i in 0 1 2; do
	uuid=$(uuidgen)
	id=$(c osd new "$uuid")
	mkdir -p "$dir/osd/ceph-$id"
	c auth get-or-create "osd.$id" mon 'allow profile osd' mgr 'allow profile osd' osd 'allow *' \
		>"$dir/osd/ceph-$id/keyring"
	ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >>"$dir/log/osd.$id.out" 2>&1
	start "osd.$id" ceph-osd -c "$conf" -i "$id"
done
for _ in $(seq 150); do
	[ "$(c osd stat -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_up_osds"])')" = 3 ] && break
	sleep 0.2
done
c osd pool create rbd "$pg_num" "$pg_num" >/dev/null
c osd pool set rbd size 3 >/dev/null
rbd -c "$conf" pool init rbd
if [ -n "$ec" ]; then
	# Stripe unit 4 KiB (osd_pool_erasure_code_stripe_unit's default): a
	# row of K x 4 KiB, as Basalt's. Its PG count stays as asked.
	c osd erasure-code-profile set ec k="${ec%+*}" m="${ec#*+}" crush-failure-domain=osd >/dev/null
	c osd pool create ec "$pg_num" "$pg_num" erasure ec >/dev/null
	c osd pool set ec pg_autoscale_mode off >/dev/null
	c osd pool set ec allow_ec_overwrites true >/dev/null
	c osd pool application enable ec rbd >/dev/null
fi
for _ in $(seq 300); do
	c -s -f json | python3 -c 'import json,sys
p = json.load(sys.stdin)["pgmap"]
n = sum(x["count"] for x in p.get("pgs_by_state", []) if x["state_name"] == "active+clean")
sys.exit(0 if p["num_pgs"] > 0 and n == p["num_pgs"] else 1)' 2>/dev/null && break
	sleep 0.5
done
rbd -c "$conf" create bench --size 1G
[ -z "$ec" ] || rbd -c "$conf" create bench-ec --size 1G --data-pool ec
c -s
