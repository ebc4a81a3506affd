#!/usr/bin/env bash
# A local cluster on this machine: monitors and OSDs on loopback ports, the
# OSDs on sparse files, everything (config, keyring, stores, logs, PIDs)
# under one directory.
#
#   scripts/cluster.sh up [--dir DIR] [--mons N] [--osds N] [--osd-size SIZE]
#   scripts/cluster.sh status [--dir DIR]
#   scripts/cluster.sh down [--dir DIR] [--purge]
#
# up      writes DIR/basalt.conf and DIR/keyring (unless they exist: then it
#         restarts what is there), formats what is new, starts the daemons
#         in the background, waits for a leader and every OSD up, and
#         records each PID in DIR/pids. Defaults: DIR /tmp/basalt-cluster,
#         3 monitors, 3 OSDs (each on its own pretend host), 1G per OSD.
# status  which recorded daemons run, then `basalt status`.
# down    stops exactly the recorded PIDs (SIGTERM, then SIGKILL after 5 s);
#         --purge also removes DIR.
#
# Use the cluster with: export BASALT_CONF=DIR/basalt.conf; build/basalt status
# BASALT_BUILD=DIR uses the binaries built there (and builds nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BASALT_BUILD:-$PWD/build}

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
cmd=${1:-}
[ -n "$cmd" ] || usage
shift
dir=/tmp/basalt-cluster mons=3 osds=3 osd_size=1G purge=0
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

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
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
	p=$(recorded | awk -v n="$name" '$1 == n {print $2}')
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
	recorded | while read -r name p; do
		if alive "$p"; then echo "$name running (pid $p)"; else echo "$name stopped"; fi
	done
	cli --timeout 5 status || true
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
-h|--help|help) usage 0 ;;
*) echo "cluster.sh: unknown command $cmd" >&2; usage ;;
esac
