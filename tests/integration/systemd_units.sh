#!/usr/bin/env bash
# The package under a booted systemd: systemd_boot.sh boots this machine's
# systemd as PID 1 of its own namespaces (a tmpfs overlay over /, its own
# cgroups, the machine's network), and in it:
#  - dpkg -i: the units are known at once (daemon-reload), /run/docker/plugins
#    made (tmpfiles), nothing started;
#  - basalt-osd@0 started before any monitor stays "activating"; basalt-mon@a
#    starts (ready: listening) and the OSD becomes active once accepted;
#    basalt-nbd, basalt-fuse@mnt-basalt (and basalt-docker, when the
#    package has it) start and serve; a restart of basalt-mon@a is clean;
#  - the journal: no timestamps of ours, info at priority 6, a start-up
#    error (basalt-osd@5: no such OSD) at 3, that unit restarting;
#  - an OSD killed with SIGKILL is restarted by systemd;
#  - reinstalling (an upgrade) restarts nothing; stopping basalt.target
#    stops every daemon cleanly; dpkg -r stops a running one and keeps
#    /var/lib/basalt.
# Where systemd cannot boot (no overlayfs, no cgroup namespaces, no
# writable cgroupfs: an unprivileged container), it says why and is
# skipped (exit 77); package.sh still covers the units with
# systemd-analyze verify.
#   systemd_units.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: systemd_units.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-systemd.XXXXXX)
cg=basalt-test-${dir##*.}
boot_pid='' sd=''
cgroup_dirs() {
	if [ -d /sys/fs/cgroup/unified ]; then
		echo "/sys/fs/cgroup/systemd/$cg /sys/fs/cgroup/unified/$cg"
	else
		echo "/sys/fs/cgroup/$cg"
	fi
}
cleanup() {
	if [ -n "$sd" ] && [ -e "/proc/$sd" ]; then
		in_sd systemctl poweroff --no-block >/dev/null 2>&1 || true
		for _ in $(seq 50); do [ -e "/proc/$sd" ] || break; sleep 0.1; done
	fi
	# PID 1 of the namespace gone, the kernel ends every process in it.
	[ -n "$boot_pid" ] && { kill -9 "$boot_pid" 2>/dev/null || true; wait "$boot_pid" 2>/dev/null || true; }
	for c in $(cgroup_dirs); do
		[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -n "$sd" ] && in_sd journalctl --no-pager -o short-precise -u 'basalt*' 2>/dev/null | tail -n 30 >&2
	exit 1
}
skip() { echo "SKIP: $*"; exit 77; }
# in_sd COMMAND...: runs COMMAND inside the booted system.
in_sd() { nsenter -t "$sd" -m -p -u -r -w "$@"; }
prop() { in_sd systemctl show -p "$2" --value "$1"; }
# wait_state UNIT STATE SECONDS
wait_state() {
	for _ in $(seq $(($3 * 10))); do [ "$(prop "$1" ActiveState)" = "$2" ] && return 0; sleep 0.1; done
	fail "$1 is $(prop "$1" ActiveState)/$(prop "$1" SubState), not $2, after $3 s"
}

[ "$(id -u)" = 0 ] || skip "needs root"
[ -x /lib/systemd/systemd ] || skip "systemd is not installed"
. "$(dirname "$0")/package_lib.sh"
package_build

# --- boot ---------------------------------------------------------------------
for c in $(cgroup_dirs); do mkdir "$c" 2>/dev/null || skip "cannot make the cgroup $c"; done
unshare --mount --pid --fork --uts --ipc "$(dirname "$0")/systemd_boot.sh" enter "$dir" "$cg" \
	>"$dir/console.log" 2>&1 &
boot_pid=$!
for _ in $(seq 100); do
	sd=$(cat "/proc/$boot_pid/task/$boot_pid/children" 2>/dev/null | awk '{print $1}') || true
	if [ -n "$sd" ] && [ "$(cat "/proc/$sd/comm" 2>/dev/null)" = systemd ]; then
		state=$(in_sd systemctl is-system-running 2>/dev/null) || true
		[ "$state" = running ] || [ "$state" = degraded ] && break
	fi
	sd=
	[ -e "/proc/$boot_pid" ] || break
	sleep 0.2
done
[ -n "$sd" ] || skip "systemd did not boot in namespaces here: $(tail -n 5 "$dir/console.log")"
echo "systemd booted (pid $sd, $(in_sd systemctl --version | head -1))"

# --- install --------------------------------------------------------------------
in_sd sh -c 'cat >/root/basalt.deb' <"$deb"
in_sd dpkg -i /root/basalt.deb >"$dir/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$dir/dpkg.log")"
[ "$(prop basalt-mon@a.service LoadState)" = loaded ] || fail "systemd does not know basalt-mon@ after install"
in_sd test -d /run/docker/plugins || fail "the install did not make /run/docker/plugins"
[ -z "$(in_sd systemctl list-units --no-legend --plain 'basalt*' | grep -v basalt-test || true)" ] ||
	fail "the install started something: $(in_sd systemctl list-units --no-legend 'basalt*')"

read -r pmon posd pnbd < <("$src/scripts/free-ports" 3)
key=$(head -c 32 /dev/urandom | base64)
fsid=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
in_sd sh -c "umask 077 && printf '[mon.]\nkey = $key\n[client.admin]\nkey = $key\n[osd.0]\nkey = $key\n' >/etc/basalt/keyring"
in_sd sh -c "printf '[global]\nfsid = $fsid\nmon_tick = 20ms\nmon_election_timeout = 300ms\n[mon.a]\naddr = 127.0.0.1:$pmon\ndata = /var/lib/basalt/mon.a\n[osd.0]\ndevice = /var/lib/basalt/osd.0.img\naddr = 127.0.0.1:$posd\nhost = h0\n' >/etc/basalt/basalt.conf"
in_sd sh -c "echo 'BASALT_NBD_OPTIONS=\"--listen 127.0.0.1:$pnbd\"' >/etc/default/basalt-nbd"
# No -c from here on: the programs find /etc/basalt/basalt.conf by themselves.
in_sd basalt-mon --mkfs --id a >/dev/null || fail "mon mkfs"
in_sd basalt-osd --mkfs --device /var/lib/basalt/osd.0.img --size 256M >/dev/null 2>&1 || fail "osd mkfs"

# --- readiness ------------------------------------------------------------------
in_sd systemctl start --no-block basalt-osd@0
for _ in $(seq 100); do
	in_sd journalctl -u basalt-osd@0 -o cat 2>/dev/null | grep -q "osd.0 started" && break
	sleep 0.1
done
sleep 1
[ "$(prop basalt-osd@0 ActiveState)" = activating ] ||
	fail "basalt-osd@0 is $(prop basalt-osd@0 ActiveState) with no monitor running"
in_sd systemctl start basalt-mon@a || fail "basalt-mon@a did not start"
[ "$(prop basalt-mon@a StatusText)" = "mon.a listening" ] || fail "mon status: $(prop basalt-mon@a StatusText)"
wait_state basalt-osd@0 active 30
[[ $(prop basalt-osd@0 StatusText) == "osd.0 up in map epoch "* ]] || fail "osd status: $(prop basalt-osd@0 StatusText)"
in_sd basalt pool create rbd --size 1 --pg-num 4 >/dev/null
in_sd basalt volume create v --size 16M >/dev/null
in_sd systemctl start basalt-nbd || fail "basalt-nbd did not start"
python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3).close()" "$pnbd" ||
	fail "basalt-nbd is active but does not listen on $pnbd"
fuse_unit=basalt-fuse@$(systemd-escape --path /mnt/basalt).service
in_sd mkdir -p /mnt/basalt
in_sd systemctl start "$fuse_unit" || fail "$fuse_unit did not start"
in_sd test -f /mnt/basalt/volumes/v || fail "$fuse_unit is active but /mnt/basalt/volumes/v is not there"
units="basalt-mon@a basalt-osd@0 basalt-nbd $fuse_unit"
# The Docker plugin, when the package has it: active once its socket answers.
if [ "$(prop basalt-docker.service LoadState)" = loaded ]; then
	in_sd systemctl start --no-block basalt-docker
	wait_state basalt-docker active 60
	in_sd curl -sf --unix-socket /run/docker/plugins/basalt.sock -X POST \
		http://plugin/Plugin.Activate | grep -q VolumeDriver ||
		fail "basalt-docker is active but its socket does not answer Plugin.Activate"
	units="$units basalt-docker"
	# A mounted volume outlives a restart of the plugin (KillMode=process:
	# its basalt-fuse child is not killed with it).
	plugin() {
		in_sd curl -sf --unix-socket /run/docker/plugins/basalt.sock -X POST -d "$2" \
			"http://plugin/VolumeDriver.$1" || fail "VolumeDriver.$1 $2: no answer"
	}
	err_of() { python3 -c 'import json,sys; print(json.load(sys.stdin).get("Err", ""))'; }
	[ -z "$(plugin Create '{"Name":"dv","Opts":{"size":"64M"}}' | err_of)" ] || fail "Create dv failed"
	mp=$(plugin Mount '{"Name":"dv","ID":"c1"}' |
		python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["Mountpoint"] if not r.get("Err") else "")')
	[ -n "$mp" ] || fail "Mount dv failed"
	in_sd sh -c "echo kept >'$mp/f' && sync" || fail "cannot write into $mp"
	in_sd systemctl restart basalt-docker || fail "basalt-docker did not restart"
	in_sd mountpoint -q "$mp" || fail "restarting basalt-docker unmounted $mp"
	[ "$(in_sd cat "$mp/f")" = kept ] || fail "$mp/f is gone after restarting basalt-docker"
	[ -z "$(plugin Unmount '{"Name":"dv","ID":"c1"}' | err_of)" ] || fail "Unmount dv failed"
	[ -z "$(plugin Remove '{"Name":"dv"}' | err_of)" ] || fail "Remove dv failed"
	echo "basalt-docker: a mounted volume outlived a restart of the plugin"
fi
in_sd systemctl restart basalt-mon@a || fail "basalt-mon@a did not restart"
[ "$(prop basalt-mon@a Result)" = success ] || fail "basalt-mon@a stopped with $(prop basalt-mon@a Result)"
echo "ready in order: osd waited for the monitor; then active: $units"

# --- the journal ------------------------------------------------------------------
in_sd journalctl -u basalt-osd@0 -o json --no-pager >"$dir/osd.json"
python3 - "$dir/osd.json" <<'PY' || fail "journal fields of basalt-osd@0 (above)"
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ours = [l for l in lines if l.get("SYSLOG_IDENTIFIER") == "basalt-osd"]
assert ours, "no lines from basalt-osd"
for l in ours:
    assert not re.match(r"\d{4}-\d\d-\d\dT", l["MESSAGE"]), l["MESSAGE"]
started = [l for l in ours if "osd.0 started" in l["MESSAGE"]]
assert started and started[0]["PRIORITY"] == "6", started
assert started[0]["MESSAGE"].startswith("osd.0 info osd.c:"), started[0]["MESSAGE"]
PY
in_sd systemctl start basalt-osd@5 >/dev/null 2>&1 && fail "basalt-osd@5 (no [osd.5]) started"
in_sd journalctl -u basalt-osd@5 -p err -o cat --no-pager | grep -q "osd.5" ||
	fail "basalt-osd@5's refusal is not at priority err: $(in_sd journalctl -u basalt-osd@5 -o cat --no-pager)"
[ "$(prop basalt-osd@5 SubState)" = auto-restart ] || fail "basalt-osd@5 is not restarting: $(prop basalt-osd@5 SubState)"
in_sd systemctl stop basalt-osd@5
echo "journal: priorities, no timestamps of ours; a failed start restarts"

# --- restart on failure -------------------------------------------------------------
old=$(prop basalt-osd@0 MainPID)
in_sd kill -9 "$old"
for _ in $(seq 300); do
	[ "$(prop basalt-osd@0 NRestarts)" = 1 ] && [ "$(prop basalt-osd@0 ActiveState)" = active ] && break
	sleep 0.1
done
[ "$(prop basalt-osd@0 NRestarts)" = 1 ] && [ "$(prop basalt-osd@0 ActiveState)" = active ] ||
	fail "basalt-osd@0 killed was not restarted: $(prop basalt-osd@0 ActiveState), $(prop basalt-osd@0 NRestarts) restarts"
echo "basalt-osd@0 killed with SIGKILL: restarted"

# --- upgrade, stop, removal -----------------------------------------------------------
before=$(for u in $units; do prop "$u" MainPID; done | tr '\n' ' ')
in_sd dpkg -i /root/basalt.deb >"$dir/dpkg.log" 2>&1 || fail "dpkg -i again: $(cat "$dir/dpkg.log")"
after=$(for u in $units; do prop "$u" MainPID; done | tr '\n' ' ')
[ "$before" = "$after" ] || fail "reinstalling restarted daemons: $before -> $after"
in_sd systemctl stop basalt.target
for u in $units; do
	[ "$(prop "$u" ActiveState)" = inactive ] || fail "$u is $(prop "$u" ActiveState) after stopping basalt.target"
	[ "$(prop "$u" Result)" = success ] || fail "$u stopped with $(prop "$u" Result)"
done
in_sd systemctl start basalt-mon@a
# A machine built from a Docker image may forbid touching services
# (policy-rc.d exiting 101), which the prerm honours: not on a server.
in_sd rm -f /usr/sbin/policy-rc.d
in_sd dpkg -r basalt >"$dir/dpkg.log" 2>&1 || fail "dpkg -r: $(cat "$dir/dpkg.log")"
[ "$(prop basalt-mon@a ActiveState)" = inactive ] || fail "dpkg -r left basalt-mon@a $(prop basalt-mon@a ActiveState)"
[ "$(prop basalt-mon@a.service LoadState)" = not-found ] || fail "systemd still knows basalt-mon@ after removal"
in_sd test -d /var/lib/basalt/mon.a || fail "dpkg -r removed the monitor's store"
echo "upgrade restarted nothing; basalt.target stopped all cleanly; removal stopped the monitor, kept its store"
echo "PASS"
