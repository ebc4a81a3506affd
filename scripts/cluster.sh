#!/usr/bin/env bash
# A local cluster on this machine: monitors and OSDs on loopback ports, the
# OSDs on sparse files, everything (config, keyring, stores, logs, PIDs)
# under one directory.
#
#   scripts/cluster.sh up [--dir DIR] [--mons N] [--osds N] [--osd-size SIZE]
#   scripts/cluster.sh status [--dir DIR]
#   scripts/cluster.sh down [--dir DIR] [--purge]
#   scripts/cluster.sh stop|start NAME [--dir DIR]
#
# up      writes DIR/basalt.conf and DIR/keyring (unless they exist: then it
#         restarts what is there), formats what is new, starts the daemons
#         in the background, waits for a leader and every OSD up, and
#         records each PID in DIR/pids. Defaults: DIR /tmp/basalt-cluster,
#         3 monitors, 3 OSDs (each on its own pretend host), 1G per OSD.
# status  which configured daemons run, then `basalt status`.
# down    stops exactly the recorded PIDs (SIGTERM, then SIGKILL after 5 s);
#         --purge also removes DIR.
# stop    one daemon, NAME as in DIR/pids (mon.a, osd.1): SIGTERM, then
#         SIGKILL after 5 s; its line leaves DIR/pids.
# start   one daemon of the configured cluster (e.g. after stop, or after
#         it died) unless it runs; waits until an OSD is up or a monitor
#         is in the quorum (30 s).
#
# A daemon counts as running when its PID is a basalt process that is not
# a zombie (killed but not yet reaped: kill -0 still succeeds on it).
#
# Use the cluster with: export BASALT_CONF=DIR/basalt.conf; build/basalt status
# BASALT_BUILD=DIR uses the binaries built there (and builds nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BASALT_BUILD:-$PWD/build}

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit "${1:-2}"; }
cmd=${1:-}
[ -n "$cmd" ] || usage
shift
dir=/tmp/basalt-cluster mons=3 osds=3 osd_size=1G purge=0 name=
case "$cmd" in
start|stop)
	case "${1:-}" in
	mon.?*|osd.?*) name=$1; shift ;;
	*) echo "cluster.sh: $cmd takes a daemon's name, such as osd.1 or mon.a" >&2; usage ;;
	esac ;;
esac
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--mons) mons=$2; shift 2 ;;
	--osds) osds=$2; shift 2 ;;
	--osd-size) osd_size=$2; shift 2 ;;
	--purge) purge=1; shift ;;
	-h|--help) usage 0 ;;
	*) echo "cluster.sh: unknown option $1" >&2; usage ;;
	esac
done
case "$mons" in 1|3|5) ;; *) echo "cluster.sh: --mons must be 1, 3 or 5" >&2; exit 2 ;; esac
case "$osds" in ''|*[!0-9]*) echo "cluster.sh: --osds takes a number" >&2; exit 2 ;; esac
[ "$osds" -le 16 ] || { echo "cluster.sh: at most 16 OSDs" >&2; exit 2; }
names=(a b c d e)
conf=$dir/basalt.conf

# alive PID: a basalt daemon runs as PID. Not a zombie (state Z, or X
# while being reaped: kill -0 succeeds on those), and not a PID reused by
# another program (a zombie's cmdline is empty too).
alive() {
	local stat state
	[ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	state=${state%% *}
	[ "$state" != Z ] && [ "$state" != X ] || return 1
	# (2>/dev/null first: a process gone since the stat above fails the
	# redirection itself, which the shell reports before tr's own.)
	tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q 'basalt-\(mon\|osd\)'
}
pid_of() { recorded | awk -v n="$1" '$1 == n {print $2}'; }
recorded() { [ -f "$dir/pids" ] && cat "$dir/pids" || true; }
cli() { "$build/basalt" -c "$conf" "$@"; }

write_config() {
	local ports key
	read -r -a ports < <(scripts/free-ports $((mons + osds)))
	key() { head -c 32 /dev/urandom | base64; }
	{
		printf '[mon.]\nkey = %s\n[client.admin]\nkey = %s\n' "$(key)" "$(key)"
		for i in $(seq 0 $((osds - 1))); do printf '[osd.%s]\nkey = %s\n' "$i" "$(key)"; done
	} >"$dir/keyring"
	chmod 600 "$dir/keyring"
	{
		echo "[global]"
		echo "fsid = $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		echo "mon_osd_down_out_interval = 60s"
		for i in $(seq 0 $((mons - 1))); do
			printf '[mon.%s]\naddr = 127.0.0.1:%s\ndata = %s/mon.%s\n' "${names[$i]}" "${ports[$i]}" "$dir" "${names[$i]}"
		done
		for i in $(seq 0 $((osds - 1))); do
			printf '[osd.%s]\ndevice = %s/osd.%s.img\naddr = 127.0.0.1:%s\nhost = host%s\n' \
				"$i" "$dir" "$i" "${ports[$((mons + i))]}" "$i"
		done
	} >"$conf"
}

# The names of the configured daemons: mon.a ... osd.0 ...
daemons() { sed -n 's/^\[\(mon\.[a-z]*\|osd\.[0-9]*\)\]$/\1/p' "$conf"; }

start() { # start NAME: unless already running
	local name=$1 p
	p=$(pid_of "$name")
	if alive "$p"; then return 0; fi
	case "$name" in
	# Detached from our terminal and pipes: what a daemon says before
	# its log is open (a config error) goes to the same log.
	mon.*) "$build/basalt-mon" --id "${name#mon.}" -c "$conf" --log-file "$dir/$name.log" \
		</dev/null >>"$dir/$name.log" 2>&1 & ;;
	osd.*) "$build/basalt-osd" --id "${name#osd.}" -c "$conf" --log-file "$dir/$name.log" \
		</dev/null >>"$dir/$name.log" 2>&1 & ;;
	esac
	p=$!
	{ recorded | awk -v n="$name" '$1 != n'; echo "$name $p"; } >"$dir/pids.new"
	mv "$dir/pids.new" "$dir/pids"
	disown "$p" 2>/dev/null || true
}

up() {
	if [ -z "${BASALT_BUILD:-}" ]; then # else: built there already
		scripts/install-deps.sh
		cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
		ninja -C build basalt basalt-mon basalt-osd >/dev/null
	fi
	mkdir -p "$dir"
	[ -f "$conf" ] || write_config
	for name in $(daemons); do
		case "$name" in
		mon.*) [ -d "$dir/$name" ] || "$build/basalt-mon" --mkfs --id "${name#mon.}" -c "$conf" ;;
		osd.*) [ -f "$dir/$name.img" ] ||
			"$build/basalt-osd" --mkfs --device "$dir/$name.img" --size "$osd_size" >/dev/null 2>&1 ;;
		esac
	done
	for name in $(daemons); do start "$name"; done
	local want up=0
	want=$(daemons | grep -c '^osd\.' || true)
	for _ in $(seq 300); do
		up=$(cli --timeout 2 --json status 2>/dev/null |
			python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["osd"]["up"] if s["mon"]["leader"] else -1)' ||
			echo -1)
		[ "$up" -ge "$want" ] && break
		sleep 0.1
	done
	[ "$up" -ge "$want" ] || { echo "cluster.sh: the cluster did not come up; logs are in $dir" >&2; exit 1; }
	cli status
	echo
	echo "export BASALT_CONF=$conf    # then: build/basalt status"
}

status() {
	[ -f "$conf" ] || { echo "no cluster in $dir"; exit 1; }
	local n p
	for n in $(daemons); do
		p=$(pid_of "$n")
		if alive "$p"; then echo "$n running (pid $p)"; else echo "$n stopped"; fi
	done
	cli --timeout 5 status || true
}

# NAME must be a daemon of the cluster in DIR.
check_name() {
	[ -f "$conf" ] || { echo "cluster.sh: no cluster in $dir (cluster.sh up makes one)" >&2; exit 1; }
	daemons | grep -qx "$name" && return 0
	echo "cluster.sh: no daemon $name in $conf (it has: $(daemons | tr '\n' ' '))" >&2
	exit 2
}

# Whether NAME is serving: an OSD up in the map, a monitor in the quorum.
serving() {
	case "$name" in
	osd.*) cli --timeout 2 --json osd ls 2>/dev/null | python3 -c \
		"import json,sys; sys.exit(0 if any(o['id']==${name#osd.} and o['up'] for o in json.load(sys.stdin)) else 1)" ;;
	mon.*) cli --timeout 2 --json status 2>/dev/null | python3 -c \
		"import json,sys; q=json.load(sys.stdin)['mon']['quorum']; sys.exit(0 if '${name#mon.}' in q or '$name' in q else 1)" ;;
	esac
}

start_one() {
	check_name
	local p
	p=$(pid_of "$name")
	if alive "$p"; then echo "$name is already running (pid $p)"; return 0; fi
	[ -x "$build/basalt-${name%%.*}" ] || { echo "cluster.sh: no $build/basalt-${name%%.*} (build first)" >&2; exit 1; }
	start "$name"
	p=$(pid_of "$name")
	for _ in $(seq 300); do
		alive "$p" || { echo "cluster.sh: $name exited; see $dir/$name.log" >&2; exit 1; }
		if serving; then echo "$name started (pid $p)"; return 0; fi
		sleep 0.1
	done
	echo "cluster.sh: $name runs (pid $p) but is not serving after 30 s; see $dir/$name.log" >&2
	exit 1
}

stop_one() {
	check_name
	local p
	p=$(pid_of "$name")
	if ! alive "$p"; then
		echo "$name is not running"
	else
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done
		alive "$p" && kill -KILL "$p" 2>/dev/null || true
		echo "$name stopped (pid $p)"
	fi
	{ recorded | awk -v n="$name" '$1 != n'; } >"$dir/pids.new"
	mv "$dir/pids.new" "$dir/pids"
}

down() {
	local pids=() p
	while read -r _ p; do alive "$p" && pids+=("$p"); done < <(recorded)
	[ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 50); do
		local left=0
		for p in "${pids[@]}"; do alive "$p" && left=1; done
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
	rm -f "$dir/pids"
	echo "stopped ${#pids[@]} daemons"
	if [ "$purge" = 1 ]; then rm -rf "$dir"; echo "removed $dir"; fi
}

case "$cmd" in
up) up ;;
status) status ;;
down) down ;;
start) start_one ;;
stop) stop_one ;;
-h|--help|help) usage 0 ;;
*) echo "cluster.sh: unknown command $cmd" >&2; usage ;;
esac
