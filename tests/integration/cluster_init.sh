#!/usr/bin/env bash
# A cluster deployed the way the README's "Three servers" tells an
# operator: `basalt cluster init` writes the config and keyring once, each
# daemon is made (--mkfs) and started from those files alone, and the
# cluster works:
#  - three monitors elect a leader, three OSDs (on three "hosts":
#    127.0.0.1-3) come up, a size-3 pool places a copy on each host, an
#    object written reads back;
#  - with --metrics every daemon serves Prometheus metrics where the
#    config says;
#  - the keyring is 0600, the config 0644; every daemon finds the keyring
#    beside the config;
#  - init never replaces a config or a keyring (refused, the files
#    unchanged), and a bad argument (an unbracketed IPv6 address, a
#    relative device, a monitor given twice, no monitor) is refused with
#    exit status 2 naming it, writing nothing; a config that cannot be
#    created leaves no keyring behind.
#   cluster_init.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: cluster_init.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-cluster-init.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT

conf=$dir/basalt.conf
read -r -a ports < <(free_ports 6)

# refused TEXT ARGS...: `basalt -c $dir/bad.conf cluster init ARGS` exits 2
# saying TEXT, and writes no file.
refused() {
	local text=$1 rc=0
	shift
	"$build/basalt" -c "$dir/bad.conf" cluster init "$@" >"$dir/out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "cluster init $*: exit $rc, not 2: $(cat "$dir/out")"
	grep -qF -- "$text" "$dir/out" || fail "cluster init $*: says $(cat "$dir/out"), not '$text'"
	[ ! -e "$dir/bad.conf" ] && [ ! -e "$dir/keyring" ] || fail "cluster init $* wrote a file"
}
# Without -c, $BASALT_CONF or /etc/basalt/basalt.conf, no program guesses.
if [ ! -e /etc/basalt/basalt.conf ]; then
	rc=0
	env -u BASALT_CONF "$build/basalt" status >"$dir/out" 2>&1 || rc=$?
	[ "$rc" = 1 ] && grep -q "no config: give -c CONF, set BASALT_CONF, or write /etc/basalt/basalt.conf" "$dir/out" ||
		fail "basalt with no config: exit $rc: $(cat "$dir/out")"
fi
refused "an IPv6 address goes in brackets" --mon ::1:6789
refused "the device an absolute path" --mon 127.0.0.1 --osd 127.0.0.1=osd.img
refused "given twice" --mon 127.0.0.1:7000 --mon 127.0.0.1:7000
refused "give the monitors" --osd 127.0.0.1=/dev/x
refused "--ms-mode: expected crc or secure" --mon 127.0.0.1 --ms-mode tls
# A config that cannot be created after the keyring was: the keyring is
# removed again (nothing half-made is left).
rc=0
"$build/basalt" -c "$dir/no-such-dir/basalt.conf" --keyring "$dir/k2" cluster init \
	--mon 127.0.0.1 >"$dir/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "cannot create $dir/no-such-dir/basalt.conf" "$dir/out" ||
	fail "init into a missing directory: exit $rc: $(cat "$dir/out")"
[ ! -e "$dir/k2" ] || fail "the keyring of a failed init was left behind"

"$build/basalt" -c "$conf" cluster init \
	--mon "127.0.0.1:${ports[0]}" --mon "127.0.0.1:${ports[1]}" --mon "127.0.0.1:${ports[2]}" \
	--osd "127.0.0.1:${ports[3]}=$dir/osd.0.img" --osd "127.0.0.2:${ports[4]}=$dir/osd.1.img" \
	--osd "127.0.0.3:${ports[5]}=$dir/osd.2.img" --data-dir "$dir" --metrics >"$dir/out" ||
	fail "cluster init: $(cat "$dir/out")"
grep -q "wrote $conf (3 monitors, 3 OSDs) and $dir/keyring" "$dir/out" || fail "init said: $(cat "$dir/out")"
[ "$(stat -c %a "$dir/keyring")" = 600 ] || fail "keyring mode $(stat -c %a "$dir/keyring")"
[ "$(stat -c %a "$conf")" = 644 ] || fail "config mode $(stat -c %a "$conf")"
for e in 'mon\.' client.admin osd.0 osd.1 osd.2; do
	grep -q "^\[$e\]$" "$dir/keyring" || fail "no key for $e"
done

# Never over an existing cluster's files: refused, both unchanged.
sums=$(md5sum "$conf" "$dir/keyring")
rc=0
"$build/basalt" -c "$conf" cluster init --mon 127.0.0.1 >"$dir/out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "exists: cluster init never replaces" "$dir/out" ||
	fail "a second init: exit $rc: $(cat "$dir/out")"
[ "$(md5sum "$conf" "$dir/keyring")" = "$sums" ] || fail "a refused init changed the files"

# The files alone make the cluster (faster elections than the defaults
# would only save seconds: they are what an operator gets).
for i in 0 1 2; do
	"$build/basalt-osd" --mkfs --device "$dir/osd.$i.img" --size 1G >/dev/null 2>&1 || fail "mkfs osd.$i"
done
mon_mkfs_all a b c
for m in a b c; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2; do osd_start "$i"; done
wait_for "s['osd']['up']==3" 30 "OSDs up"
hosts=$(cli --json osd ls | python3 -c 'import json,sys; print(" ".join(sorted({o["host"] for o in json.load(sys.stdin)})))')
[ "$hosts" = "127.0.0.1 127.0.0.2 127.0.0.3" ] || fail "OSD hosts: $hosts"
cli pool create rbd --size 3 --pg-num 8 >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"
head -c 65536 /dev/urandom >"$dir/obj"
cli object put rbd 1:0 "$dir/obj" >/dev/null || fail "object put"
cli object get rbd 1:0 "$dir/back" >/dev/null || fail "object get"
cmp -s "$dir/obj" "$dir/back" || fail "the object read back differs"
# --metrics: every daemon serves them where init said (monitors from 9530
# on, OSDs from 9540 on, per host).
# (Into a file first: grep -q stops reading early, and under pipefail
# curl's write error would fail the check.)
curl -sf http://127.0.0.1:9532/metrics >"$dir/m.mon" && grep -q '^basalt_mon_map_epoch ' "$dir/m.mon" ||
	fail "mon.c's metrics on :9532"
curl -sf http://127.0.0.3:9540/metrics >"$dir/m.osd" && grep -q '^basalt_osd_written_bytes_total ' "$dir/m.osd" ||
	fail "osd.2's metrics on 127.0.0.3:9540"
echo "cluster_init: a cluster from basalt cluster init's files alone serves a size-3 pool on 3 hosts"
