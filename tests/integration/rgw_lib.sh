# A real S3 server for tests: Ceph's radosgw over the smallest RADOS
# cluster that runs it (one ceph-mon, one memstore ceph-osd, pools of
# size 1), cephx on, everything under $dir and on 127.0.0.1 only; sourced.
# The caller sets `dir` (a fresh temp directory) first, and may set
# `rgw_memstore_bytes` (the OSD's capacity, all of it RAM; 1 GiB unless
# set: a benchmark storing gigabytes needs more). Every daemon's PID is
# recorded in `rgw_pid` by name so rgw_down stops exactly those.
#
#   rgw_up              the whole stack and an S3 user; exports RGW_ENDPOINT,
#                       AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
#                       AWS_SECRET_ACCESS_KEY, AWS_REGION; also an HTTPS
#                       endpoint with a self-signed certificate:
#                       RGW_TLS_ENDPOINT, RGW_TLS_CA (the certificate)
#   rgw_gw_stop         kill -9 of radosgw only (fault tests)
#   rgw_gw_start        radosgw again on the same port, once it answers
#   rgw_bucket NAME     creates a bucket (awscli)
#   rgw_aws ARGS...     Debian's awscli against this server
#   rgw_down            stops every recorded daemon
#   rgw_logs            the tails of the daemons' logs (on failure)

declare -A rgw_pid

rgw_ceph() { ceph -c "$dir/rgw/ceph.conf" "$@"; }

rgw_logs() {
	local f
	for f in "$dir"/rgw/log/*; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
	done
	return 0
}

rgw_fail() {
	echo "rgw_lib: $*" >&2
	rgw_logs
	return 1
}

rgw_down() {
	local p
	for p in "${rgw_pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${rgw_pid[@]}"; do wait "$p" 2>/dev/null || true; done
	rgw_pid=()
}

# rgw_start_daemon NAME COMMAND...: in the foreground of a background process.
rgw_start_daemon() {
	local name=$1
	shift
	"$@" -f >>"$dir/rgw/log/$name.out" 2>&1 &
	rgw_pid[$name]=$!
}

rgw_conf() { # MON_PORT RGW_PORT TLS_PORT
	local fsid
	fsid=$(uuidgen)
	cat >"$dir/rgw/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$1
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/rgw/keyring
run dir = $dir/rgw/run
admin socket = $dir/rgw/run/\$name.asok
log file = $dir/rgw/log/\$name.log
pid file = $dir/rgw/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon allow pool delete = true
mon allow pool size one = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = $dir/rgw/mon/\$cluster-\$id
[osd]
osd data = $dir/rgw/osd/\$cluster-\$id
keyring = $dir/rgw/osd/\$cluster-\$id/keyring
osd objectstore = memstore
memstore device bytes = ${rgw_memstore_bytes:-1073741824}
osd memory target = 536870912
[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$2 ssl_endpoint=127.0.0.1:$3 ssl_certificate=$dir/rgw/tls/cert.pem ssl_private_key=$dir/rgw/tls/key.pem
rgw dns name = localhost
rgw data = $dir/rgw/gw
rgw thread pool size = 32
rgw init timeout = 60
EOF
}

rgw_mon_start() {
	local port=$1
	ceph-authtool --create-keyring "$dir/rgw/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool "$dir/rgw/keyring" --gen-key -n client.admin --cap mon 'allow *' \
		--cap osd 'allow *' --cap mgr 'allow *' >/dev/null
	monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$dir/rgw/ceph.conf")" \
		--addv a "v1:127.0.0.1:$port" "$dir/rgw/monmap" >/dev/null
	ceph-mon -c "$dir/rgw/ceph.conf" --mkfs -i a --monmap "$dir/rgw/monmap" \
		--keyring "$dir/rgw/keyring" >>"$dir/rgw/log/mon.a.out" 2>&1 || rgw_fail "ceph-mon --mkfs" || return 1
	rgw_start_daemon mon.a ceph-mon -c "$dir/rgw/ceph.conf" -i a
	for _ in $(seq 100); do
		timeout 5 ceph -c "$dir/rgw/ceph.conf" --connect-timeout 3 -s >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	rgw_fail "the monitor did not answer within 20 s"
}

rgw_osd_start() {
	local uuid id
	uuid=$(uuidgen)
	id=$(rgw_ceph osd new "$uuid") || rgw_fail "osd new" || return 1
	mkdir -p "$dir/rgw/osd/ceph-$id"
	rgw_ceph auth get-or-create "osd.$id" mon 'allow profile osd' mgr 'allow profile osd' \
		osd 'allow *' >"$dir/rgw/osd/ceph-$id/keyring"
	ceph-osd -c "$dir/rgw/ceph.conf" -i "$id" --mkfs --osd-uuid "$uuid" \
		>>"$dir/rgw/log/osd.$id.out" 2>&1 || rgw_fail "ceph-osd --mkfs" || return 1
	rgw_start_daemon "osd.$id" ceph-osd -c "$dir/rgw/ceph.conf" -i "$id"
	for _ in $(seq 300); do
		rgw_ceph osd stat 2>/dev/null | grep -q '1 up' && return 0
		sleep 0.2
	done
	rgw_fail "the OSD did not come up within 60 s"
}

# radosgw again on its port; waits until it answers HTTP (up to 90 s: the
# first start creates its pools).
rgw_gw_start() {
	local code
	rgw_start_daemon rgw.gw radosgw -c "$dir/rgw/ceph.conf" -n client.rgw.gw \
		--keyring "$dir/rgw/gw/keyring"
	for _ in $(seq 450); do
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$RGW_ENDPOINT/" 2>/dev/null) || true
		[ "$code" = 200 ] && return 0
		kill -0 "${rgw_pid[rgw.gw]}" 2>/dev/null || rgw_fail "radosgw exited" || return 1
		sleep 0.2
	done
	rgw_fail "radosgw did not answer $RGW_ENDPOINT within 90 s"
}

rgw_gw_stop() {
	local p=${rgw_pid[rgw.gw]:-}
	[ -n "$p" ] || return 0
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset 'rgw_pid[rgw.gw]'
}

rgw_user() {
	AWS_ACCESS_KEY_ID=$(head -c 15 /dev/urandom | base64 | tr -dc 'A-Z0-9' | head -c 20)
	AWS_ACCESS_KEY_ID=BASALT${AWS_ACCESS_KEY_ID}0000000000
	AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:0:20}
	AWS_SECRET_ACCESS_KEY=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
	radosgw-admin -c "$dir/rgw/ceph.conf" user create --uid=basalt --display-name=basalt \
		--access-key="$AWS_ACCESS_KEY_ID" --secret-key="$AWS_SECRET_ACCESS_KEY" \
		>"$dir/rgw/log/user.out" 2>&1 || rgw_fail "radosgw-admin user create" || return 1
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# A self-signed certificate for 127.0.0.1 (and localhost), for the TLS endpoint.
rgw_tls_cert() {
	mkdir -p "$dir/rgw/tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$dir/rgw/tls/key.pem" -out "$dir/rgw/tls/cert.pem" \
		>"$dir/rgw/log/openssl.out" 2>&1 || rgw_fail "openssl req"
}

rgw_up() {
	local mon_port gw_port tls_port
	mkdir -p "$dir"/rgw/{run,log,mon,osd,gw}
	read -r mon_port gw_port tls_port < <("$(dirname "${BASH_SOURCE[0]}")/../../scripts/free-ports" 3)
	rgw_tls_cert || return 1
	export RGW_ENDPOINT=http://127.0.0.1:$gw_port
	export RGW_TLS_ENDPOINT=https://127.0.0.1:$tls_port RGW_TLS_CA=$dir/rgw/tls/cert.pem
	export AWS_ENDPOINT_URL=$RGW_ENDPOINT AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	export AWS_CONFIG_FILE=$dir/rgw/aws-config AWS_SHARED_CREDENTIALS_FILE=$dir/rgw/aws-credentials
	: >"$AWS_CONFIG_FILE"
	: >"$AWS_SHARED_CREDENTIALS_FILE"
	rgw_conf "$mon_port" "$gw_port" "$tls_port"
	rgw_mon_start "$mon_port" || return 1
	rgw_osd_start || return 1
	rgw_ceph auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' \
		>"$dir/rgw/gw/keyring" || rgw_fail "auth for radosgw" || return 1
	rgw_gw_start || return 1
	rgw_user
}

# Debian's awscli (`aws` on PATH may be a pyenv shim without it).
rgw_aws() {
	/usr/bin/aws --endpoint-url "$RGW_ENDPOINT" "$@"
}

rgw_bucket() {
	rgw_aws s3api create-bucket --bucket "$1" >/dev/null || rgw_fail "create-bucket $1"
}
