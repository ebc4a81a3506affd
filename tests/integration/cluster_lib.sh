# Helpers for tests that run a real cluster on this machine; sourced.
# The caller sets `build` (the build directory) and `dir` (a fresh temp
# directory) first. Every daemon started here is recorded in `pid` by name
# ("mon.a", "osd.0") so cluster_cleanup stops exactly those.

declare -A pid

cluster_cleanup() {
	for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
	for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
}

# For tests that put a filesystem on a volume (nbdfuse, then a loop
# mount): mount_dirs makes $mnt and $fuse under $dir; mount_cleanup, their
# EXIT trap, unmounts both, stops the cluster and removes $dir (kept with
# KEEP=1).
mount_dirs() {
	mnt=$dir/mnt fuse=$dir/fuse
	mkdir -p "$mnt" "$fuse"
}
mount_cleanup() {
	mountpoint -q "$mnt" && umount "$mnt"
	mountpoint -q "$fuse" && { fusermount3 -u "$fuse" 2>/dev/null || umount -l "$fuse"; }
	cluster_cleanup
	[ -n "${KEEP:-}" ] || rm -rf "$dir"
}

fail() {
	echo "FAIL: $*" >&2
	for f in "$dir"/*.log; do [ -e "$f" ] && { echo "--- $f" >&2; tail -n 8 "$f" >&2; }; done
	exit 1
}

# N free TCP ports on loopback (outside the ephemeral range).
free_ports() {
	"$(dirname "${BASH_SOURCE[0]}")/../../scripts/free-ports" "$1"
}

# cluster_conf "a=HOST:PORT b=HOST:PORT ..." [extra [global] lines]:
# a keyring with one key for mon., client.admin and osd.0-15, and a config
# naming those monitors. Timings default to fast ones for tests.
cluster_conf() {
	local mons=$1 extra=${2:-} key
	key=$(head -c 32 /dev/urandom | base64)
	{
		printf '[mon.]\nkey = %s\n[client.admin]\nkey = %s\n' "$key" "$key"
		for i in $(seq 0 15); do printf '[osd.%s]\nkey = %s\n' "$i" "$key"; done
	} >"$dir/keyring"
	{
		echo "[global]"
		echo "fsid = $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		echo "mon_tick = 20ms"
		echo "mon_election_timeout = 300ms"
		echo "mon_heartbeat = 60ms"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		for m in $mons; do
			printf '[mon.%s]\naddr = %s\ndata = %s/mon.%s\n' "${m%%=*}" "${m#*=}" "$dir" "${m%%=*}"
		done
	} >"$dir/basalt.conf"
}

# Three monitors a, b, c on free loopback ports.
cluster_conf_local() {
	local pa pb pc
	read -r pa pb pc < <(free_ports 3)
	cluster_conf "a=127.0.0.1:$pa b=127.0.0.1:$pb c=127.0.0.1:$pc" "${1:-}"
}

cli() { "$build/basalt" -c "$dir/basalt.conf" "$@"; }

# mon_start NAME [COMMAND PREFIX...]: e.g. mon_start a ip netns exec ns-a
mon_start() {
	local m=$1
	shift
	"$@" "$build/basalt-mon" --id "$m" -c "$dir/basalt.conf" --log-file "$dir/mon.$m.log" &
	pid[mon.$m]=$!
}

mon_mkfs_all() {
	for m in "$@"; do "$build/basalt-mon" --mkfs --id "$m" -c "$dir/basalt.conf" || fail "mkfs mon.$m"; done
}

# The leader's name, once there is one (up to 10 s).
leader() {
	local l
	for _ in $(seq 100); do
		l=$(cli --timeout 10 --json status 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["mon"]["leader"])') || true
		[ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.1
	done
	return 1
}

# The map epoch monitor $1 has applied (-1 when it does not answer).
epoch_of() {
	cli --mon "$1" --timeout 10 --json mon ls |
		python3 -c "import json,sys; print([m.get('epoch', -1) for m in json.load(sys.stdin) if m['name']=='$1'][0])"
}

# Waits until the named monitors have applied epoch $1 or more, and agree.
converge() {
	local want=$1 first e same
	shift
	for _ in $(seq 200); do
		first= same=1
		for m in "$@"; do
			e=$(epoch_of "$m")
			[ -z "$first" ] && first=$e
			[ "$e" = "$first" ] || same=0
		done
		[ "$same" = 1 ] && [ "$first" -ge "$want" ] && return 0
		sleep 0.05
	done
	return 1
}

# osd_conf_local SIZE HOST...: one OSD per HOST (osd.0 on the first) on
# free loopback ports, each with a fresh store of SIZE under $dir.
osd_conf_local() {
	local size=$1 i=0 ports
	shift
	read -r -a ports < <(free_ports $#)
	for h in "$@"; do
		printf '[osd.%s]\ndevice = %s/osd.%s.img\naddr = 127.0.0.1:%s\nhost = %s\n' \
			"$i" "$dir" "$i" "${ports[$i]}" "$h" >>"$dir/basalt.conf"
		"$build/basalt-osd" --mkfs --device "$dir/osd.$i.img" --size "$size" >/dev/null 2>&1 ||
			fail "mkfs osd.$i"
		i=$((i + 1))
	done
}

# osd_start ID / osd_kill ID (kill -9, then reaped).
osd_start() {
	"$build/basalt-osd" --id "$1" -c "$dir/basalt.conf" --log-file "$dir/osd.$1.log" &
	pid[osd.$1]=$!
}
osd_kill() { { kill -9 "${pid[osd.$1]}"; wait "${pid[osd.$1]}"; } 2>/dev/null || true; }

# cluster_start: monitors a, b, c and osd.0-2 of the config written
# already; returns once there is a leader and every OSD is up.
cluster_start() {
	mon_mkfs_all a b c
	for m in a b c; do mon_start "$m"; done
	leader >/dev/null || fail "no leader"
	for i in 0 1 2; do osd_start "$i"; done
	wait_for "s['osd']['up']==3" 20 "OSDs up"
}

# cluster_up_local OSD_SIZE [EXTRA]: the common test cluster — monitors a,
# b, c and osd.0-2 (on hosts h0-h2, OSD_SIZE each) on loopback, EXTRA
# [global] config lines; returns once there is a leader and every OSD is up.
cluster_up_local() {
	cluster_conf_local "${2:-}"
	osd_conf_local "$1" h0 h1 h2
	cluster_start
}

# volumes_up OSD_SIZE NAME=SIZE...: cluster_up_local, a pool rbd of 16 PGs
# with those volumes, every PG active+clean, and basalt-nbd serving them
# ($uri).
volumes_up() {
	cluster_up_local "$1"
	shift
	cli pool create rbd --size 3 --pg-num 16 >/dev/null
	for v in "$@"; do cli volume create "${v%%=*}" --size "${v#*=}" >/dev/null; done
	wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"
	nbd_start
}

# nbd_start [ARGS...]: basalt-nbd on a free loopback port with the test
# cluster's config (ARGS added), recorded as pid[nbd]; returns once it
# listens, with its address in $uri ("nbd://127.0.0.1:PORT").
nbd_start() {
	local port
	read -r port < <(free_ports 1)
	"$build/basalt-nbd" -c "$dir/basalt.conf" --log-file "$dir/nbd.log" \
		--listen "127.0.0.1:$port" "$@" &
	pid[nbd]=$!
	for _ in $(seq 50); do
		grep -q "listening on 127.0.0.1:$port" "$dir/nbd.log" 2>/dev/null && break
		sleep 0.1
	done
	uri=nbd://127.0.0.1:$port
}

# fuse_start NAME MOUNT ARGS...: basalt-fuse on MOUNT in the foreground
# with the test cluster's config (ARGS added), logging to $dir/NAME.log,
# recorded as pid[NAME]; returns once it has mounted. File descriptor 5
# (a test's open volume file) is not passed on.
fuse_start() {
	local name=$1 m=$2
	shift 2
	"$build/basalt-fuse" "$m" -f -c "$dir/basalt.conf" --log-file "$dir/$name.log" "$@" 5<&- &
	pid[$name]=$!
	for _ in $(seq 50); do grep -q "mounted on" "$dir/$name.log" 2>/dev/null && return 0; sleep 0.1; done
	fail "$name did not mount"
}

# js EXPR: a Python expression over s, the cluster's `status --json`.
js() { cli --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

# used_settled: the cluster's used_bytes once two readings a beacon
# interval apart agree (at most ~15 s): what was written before is
# counted, so a later comparison is not thrown by late reports.
used_settled() {
	local a b
	a=$(js "s['usage']['used_bytes']")
	for _ in $(seq 6); do
		sleep 2.5
		b=$(js "s['usage']['used_bytes']")
		[ "$a" = "$b" ] && break
		a=$b
	done
	echo "$b"
}

# wait_for EXPR SECONDS WHAT: until js EXPR is True, or fail saying WHAT.
wait_for() {
	for _ in $(seq $(($2 * 5))); do [ "$(js "$1" 2>/dev/null)" = True ] && return 0; sleep 0.2; done
	fail "$3: $(cli status)"
}

# fio_verified JSON: every job of fio's JSON report ran without error and
# both wrote and read back (verify); prints each job's counts.
fio_verified() {
	python3 - "$1" <<'PY'
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    assert j["error"] == 0, (j["jobname"], j["error"])
    assert j["write"]["total_ios"] > 0 and j["read"]["total_ios"] > 0, j["jobname"]
    print(f'{j["jobname"]}: {j["write"]["total_ios"]} writes, {j["read"]["total_ios"]} verified reads')
PY
}

# pcap_start FILE FILTER: tcpdump on loopback into FILE (pid in $pcap_pid,
# stop it with pcap_stop; the caller's EXIT trap should kill it too).
pcap_start() {
	tcpdump -i lo --immediate-mode -U -s 0 -B 16384 -w "$1" "$2" 2>"$1.log" &
	pcap_pid=$!
	for _ in $(seq 100); do grep -q "listening on" "$1.log" && return 0; sleep 0.1; done
	fail "tcpdump did not start: $(cat "$1.log")"
}

# pcap_stop FILE: once tcpdump has written every packet its filter took
# (a busy machine leaves it behind; SIGTERM would drop the rest), stops it.
pcap_stop() {
	local got want
	for _ in $(seq 50); do
		kill -USR1 "$pcap_pid"
		sleep 0.2
		got=$(grep -o '[0-9]* packets captured' "$1.log" | tail -1 | cut -d' ' -f1 || true)
		want=$(grep -o '[0-9]* packets received by filter' "$1.log" | tail -1 | cut -d' ' -f1 || true)
		[ -n "$got" ] && [ "$got" -ge "$want" ] && break
	done
	kill "$pcap_pid" 2>/dev/null || true
	wait "$pcap_pid" 2>/dev/null || true
	pcap_pid=
}
