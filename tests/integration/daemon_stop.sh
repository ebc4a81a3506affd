#!/usr/bin/env bash
# Daemons always stop: SIGTERM is honoured within a bounded time whatever
# the process waits for, and a second signal exits at once.
#  - an OSD whose device stops answering (its store is a file under
#    basalt-fuse, which is then frozen with SIGSTOP): SIGTERM, and it is
#    gone within its stop bound (daemon_stop_timeout, 5 s here), saying why;
#  - basalt-nbd with requests in flight to a cluster that is gone (every
#    OSD killed): SIGTERM, and it gives up on them after half its bound
#    and exits;
#    a second SIGTERM exits at once.
#   daemon_stop.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: daemon_stop.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-stop.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
mnt=$dir/mnt
cleanup() {
	for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	fusermount3 -u -z "$mnt" 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT

# stopped_within PID SECONDS: PID (our child) has exited by then.
stopped_within() {
	for _ in $(seq $(($2 * 10))); do
		[ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ] || return 0
		sleep 0.1
	done
	return 1
}

cluster_up_local 256M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms
daemon_stop_timeout = 5s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create dev --size 200M >/dev/null
cli volume create vm --size 64M >/dev/null
cli volume create vm2 --size 64M >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# --- an OSD on a device that stops answering --------------------------------
mkdir -p "$mnt"
"$build/basalt-fuse" "$mnt" -c "$dir/basalt.conf" -f --log-file "$dir/fuse.log" &
pid[fuse]=$!
for _ in $(seq 50); do [ -e "$mnt/volumes/dev" ] && break; sleep 0.1; done
[ -e "$mnt/volumes/dev" ] || fail "basalt-fuse did not mount"
"$build/basalt-osd" --mkfs --device "$mnt/volumes/dev" >/dev/null || fail "mkfs on the FUSE file"
read -r port < <(free_ports 1)
printf '[osd.3]\ndevice = %s\naddr = 127.0.0.1:%s\nhost = h3\n' "$mnt/volumes/dev" "$port" \
	>>"$dir/basalt.conf"
osd_start 3
wait_for "s['osd']['up']==4" 30 "osd.3 up"
kill -STOP "${pid[fuse]}"
sleep 1
start=$SECONDS
kill -TERM "${pid[osd.3]}"
stopped_within "${pid[osd.3]}" 20 || fail "osd.3 did not stop within 20 s of SIGTERM on a stuck device"
wait "${pid[osd.3]}" 2>/dev/null && fail "osd.3 says it stopped cleanly on a stuck device" || true
grep -q "did not stop within 5 s" "$dir/osd.3.log" ||
	fail "osd.3 did not say why it stopped: $(tail -3 "$dir/osd.3.log")"
echo "osd.3 on a frozen device: stopped $((SECONDS - start)) s after SIGTERM, saying so"
unset "pid[osd.3]"
kill -CONT "${pid[fuse]}"

# --- basalt-nbd whose cluster is gone ---------------------------------------
# nbd_up VOLUME: basalt-nbd, and fio writing to VOLUME through it.
nbd_up() {
	nbd_start
	fio --name=w --ioengine=nbd --uri="$uri/$1" --rw=randwrite --bs=4k \
		--iodepth=4 --size=64M --time_based --runtime=300 >/dev/null 2>&1 &
	pid[fio]=$!
	sleep 2
	[ -e "/proc/${pid[fio]}" ] || fail "fio is not writing through basalt-nbd"
}
# (a new volume each time: the first server leaves its lock to its lease)
nbd_up vm
for i in 0 1 2; do osd_kill "$i"; done
sleep 1
start=$SECONDS
kill -TERM "${pid[nbd]}"
stopped_within "${pid[nbd]}" 15 || fail "basalt-nbd did not stop within 15 s with the cluster gone"
grep -q "stopping without their answers" "$dir/nbd.log" ||
	fail "basalt-nbd did not say it gave up: $(tail -3 "$dir/nbd.log")"
echo "basalt-nbd with its cluster gone: stopped $((SECONDS - start)) s after SIGTERM"
kill -9 "${pid[fio]}" 2>/dev/null || true
wait "${pid[fio]}" 2>/dev/null || true
for i in 0 1 2; do osd_start "$i"; done
wait_for "s['osd']['up']==3" 30 "OSDs back"
nbd_up vm2
for i in 0 1 2; do osd_kill "$i"; done
sleep 1
kill -TERM "${pid[nbd]}"
sleep 0.2
kill -TERM "${pid[nbd]}"
stopped_within "${pid[nbd]}" 3 || fail "a second SIGTERM did not stop basalt-nbd at once"
grep -q "a second signal: exiting at once" "$dir/nbd.log" ||
	fail "basalt-nbd did not say it left at the second signal"
echo "a second SIGTERM: basalt-nbd exited at once"
kill -9 "${pid[fio]}" 2>/dev/null || true
echo PASS
