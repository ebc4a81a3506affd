#!/usr/bin/env bash
# basalt-docker's plugin protocol through its socket with curl (no Docker
# engine), on a local cluster (3 monitors, 3 OSDs, mon_lock_lease = 3s):
#  - Plugin.Activate, Capabilities (global); bad options on the command
#    line; a missing config reported by a plugin going to the background;
#  - Create with options (a Basalt volume of that size), an unknown option,
#    a bad size, a missing pool, a bad fs; an existing volume is adopted;
#  - Get/List/Path report the mountpoint only while mounted;
#  - Mount from two container IDs: one basalt-fuse child, one mount,
#    formatted at first use; Unmount of the first keeps it, of the last
#    unmounts it, stops the child and gives the lock back;
#  - a second use keeps the files (never formatted again); a volume holding
#    data but no filesystem is refused and left untouched;
#  - Unmount is refused while the mount is busy (the mount stays);
#  - Remove is refused while mounted here or locked by anyone, then frees
#    the space at once;
#  - fs=xfs at Create: the first Mount makes xfs;
#  - --takeover wait: a live holder is waited for and then named in the
#    Err; a frozen one's lease runs out and the plugin takes over, fencing it;
#  - a plugin restarted (SIGTERM) leaves the mount and takes it up again;
#    one whose mount went while it was down (a reboot) forgets it;
#  - its Prometheus metrics (promtool-clean) count the calls, errors,
#    mounts, users and formats; a bad --metrics-addr stops it; a
#    metrics_addr for [fuse] in the config (a basalt-fuse of the host
#    serving it) does not reach the plugin's basalt-fuse children;
#  - malformed JSON, a non-object, a body too big, GET, an unknown call,
#    a bad name, a Mount without ID: each a clear Err.
#   docker_plugin.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: docker_plugin.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-docker.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
sock=$dir/plugin.sock state=$dir/state hold=$dir/hold
mkdir -p "$hold"
cleanup() {
	set +e
	exec 5<&- 6<&- 2>/dev/null
	[ -n "${pid[plugin]:-}" ] && kill "${pid[plugin]}" 2>/dev/null
	# what the plugin mounted: the filesystems, then the basalt-fuse children
	for m in $(awk -v d="$dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	for f in "$state"/state.json; do
		[ -e "$f" ] || continue
		for p in $(python3 -c 'import json,sys; [print(m["fuse_pid"]) for m in json.load(open(sys.argv[1]))["mounts"].values()]' "$f"); do
			kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true
		done
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in curl mkfs.ext4 mkfs.xfs blkid python3 promtool; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

# --- the command line ---
"$build/basalt-docker" --takeover soon 2>"$dir/err" && fail "--takeover soon accepted"
grep -q "takes wait or break" "$dir/err" || fail "--takeover soon: $(cat "$dir/err")"
"$build/basalt-docker" --fs btrfs 2>"$dir/err" && fail "--fs btrfs accepted"
grep -q "ext4 or xfs" "$dir/err" || fail "--fs btrfs: $(cat "$dir/err")"
"$build/basalt-docker" --default-size 1Q 2>"$dir/err" && fail "--default-size 1Q accepted"
grep -q "default-size" "$dir/err" || fail "--default-size 1Q: $(cat "$dir/err")"
"$build/basalt-docker" --help | grep -q -- "--takeover wait|break" || fail "--help"
"$build/basalt-docker" --version | grep -q "^basalt-docker " || fail "--version"
# In the background too, a mistake is told to the shell that started it.
rc=0
"$build/basalt-docker" -c "$dir/none.conf" --socket "$dir/x.sock" --state-dir "$dir/x" 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] && grep -q "none.conf" "$dir/err" || fail "a missing config in the background: $rc $(cat "$dir/err")"

cluster_up_local 1G "mon_lock_lease = 3s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli pool create ec --ec 2+1 --pg-num 8 >/dev/null # v1's: Docker volumes on EC pools
wait_for "s['pgs'].get('active+clean')==24" 30 "PGs active+clean"
read -r mport fport < <(free_ports 2)
# The host's own basalt-fuse (fuseH below) serves metrics here; the
# plugin's children must not try to.
printf '[fuse]\nmetrics_addr = 127.0.0.1:%s\n' "$fport" >>"$dir/basalt.conf"
rc=0
"$build/basalt-docker" -f -c "$dir/basalt.conf" --socket "$dir/m.sock" --state-dir "$dir/m" \
	--metrics-addr 127.0.0.1:0 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] && grep -q "metrics_addr '127.0.0.1:0'" "$dir/err" || fail "--metrics-addr port 0: $rc $(cat "$dir/err")"

plugin_start() { # plugin_start ARGS...: in the foreground, as pid[plugin]
	"$build/basalt-docker" -f -c "$dir/basalt.conf" --socket "$sock" --state-dir "$state" \
		--log-file "$dir/plugin.log" --default-size 64M --metrics-addr "127.0.0.1:$mport" "$@" &
	pid[plugin]=$!
	for _ in $(seq 100); do [ -S "$sock" ] && grep -q "serving Docker" "$dir/plugin.log" && return 0; sleep 0.1; done
	fail "the plugin did not start"
}
plugin_start

# call ENDPOINT JSON: the reply body in $dir/r, the HTTP status in $code
call() {
	code=$(curl -sS -o "$dir/r" -w '%{http_code}' --unix-socket "$sock" -X POST \
		-H 'Content-Type: application/json' --data-binary "$2" "http://plugin/$1")
}
# r EXPR: a Python expression over the last reply, j
r() { python3 -c "import json,sys; j=json.load(open('$dir/r')); print($1)"; }
ok() { # ok ENDPOINT JSON: a call that must succeed (Err empty)
	call "$1" "$2"
	[ "$code" = 200 ] && [ "$(r 'j.get("Err", "")')" = "" ] || fail "$1 $2: $code $(cat "$dir/r")"
}
refused() { # refused ENDPOINT JSON PATTERN: Err matches PATTERN
	call "$1" "$2"
	r 'j["Err"]' | grep -q -- "$3" || fail "$1 $2: expected an Err with '$3', got $code $(cat "$dir/r")"
}
mounted() { mountpoint -q "$state/mnt/$1"; }
fuse_children() { awk -v d="$state/fuse/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l; }
holder() { cli --json volume info "$1" | python3 -c 'import json,sys; l=json.load(sys.stdin)["lock"]; print(l["owner"] if l else "")'; }

# --- handshake ---
ok Plugin.Activate ''
[ "$(r 'j["Implements"]')" = "['VolumeDriver']" ] || fail "Activate: $(cat "$dir/r")"
ok VolumeDriver.Capabilities '{}'
[ "$(r 'j["Capabilities"]["Scope"]')" = global ] || fail "Capabilities: $(cat "$dir/r")"

# --- Create ---
ok VolumeDriver.Create '{"Name": "v1", "Opts": {"size": "96M", "fs": "ext4", "pool": "ec"}}'
[ "$(cli --json volume info v1 | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["size"], j["pool"])')" = "$((96 << 20)) ec" ] ||
	fail "v1 is not 96M in pool ec: $(cli volume info v1)"
refused VolumeDriver.Create '{"Name": "v2", "Opts": {"colour": "red"}}' "unknown option 'colour'"
refused VolumeDriver.Create '{"Name": "v2", "Opts": {"size": "lots"}}' "size"
refused VolumeDriver.Create '{"Name": "v2", "Opts": {"pool": "nopool"}}' "nopool"
refused VolumeDriver.Create '{"Name": "v2", "Opts": {"fs": "btrfs"}}' "ext4 or xfs"
refused VolumeDriver.Create '{"Name": "../etc", "Opts": {}}' "bad volume name"
cli volume ls | grep -q v2 && fail "a refused Create made v2"
cli volume create pre --size 32M >/dev/null
ok VolumeDriver.Create '{"Name": "pre", "Opts": {"size": "1G"}}'
grep -q "create pre: a Basalt volume of that name exists.*adopting it" "$dir/plugin.log" || fail "pre not adopted"
[ "$(cli --json volume info pre | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = $((32 << 20)) ] ||
	fail "adopting pre changed it"
ok VolumeDriver.Create '{"Name": "deflt"}'
[ "$(cli --json volume info deflt | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = $((64 << 20)) ] ||
	fail "deflt is not --default-size"

# --- Get, List, Path before a mount ---
ok VolumeDriver.Get '{"Name": "v1"}'
[ "$(r 'j["Volume"]["Name"], "Mountpoint" in j["Volume"]')" = "v1 False" ] || fail "Get v1: $(cat "$dir/r")"
refused VolumeDriver.Get '{"Name": "nope"}' "no Basalt volume named 'nope'"
ok VolumeDriver.List '{}'
[ "$(r 'sorted(v["Name"] for v in j["Volumes"])')" = "['deflt', 'pre', 'v1']" ] || fail "List: $(cat "$dir/r")"
ok VolumeDriver.Path '{"Name": "v1"}'
[ "$(r 'j["Mountpoint"]')" = "" ] || fail "Path before a mount: $(cat "$dir/r")"

# --- Mount twice, one fuse child ---
ok VolumeDriver.Mount '{"Name": "v1", "ID": "c1"}'
mp=$(r 'j["Mountpoint"]')
[ "$mp" = "$state/mnt/v1" ] && mounted v1 || fail "Mount v1: $(cat "$dir/r")"
grep -q "volume v1: no filesystem and never written: formatting it with ext4" "$dir/plugin.log" ||
	fail "v1 not formatted at first use"
[ "$(holder v1)" != "" ] || fail "v1 mounted but not locked"
loop=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mounts"]["v1"]["loop_dev"])' "$state/state.json")
[ "$(cat "/sys/block/${loop#/dev/}/loop/dio")" = 1 ] || fail "$loop does not use direct I/O"
echo hello >"$mp/hello"
ok VolumeDriver.Mount '{"Name": "v1", "ID": "c2"}'
[ "$(r 'j["Mountpoint"]')" = "$mp" ] || fail "second Mount: $(cat "$dir/r")"
[ "$(fuse_children)" = 1 ] || fail "$(fuse_children) basalt-fuse mounts for one volume"
ok VolumeDriver.Path '{"Name": "v1"}'
[ "$(r 'j["Mountpoint"]')" = "$mp" ] || fail "Path: $(cat "$dir/r")"
ok VolumeDriver.Get '{"Name": "v1"}'
[ "$(r 'j["Volume"]["Mountpoint"], j["Volume"]["Status"]["users_here"]')" = "$mp 2" ] || fail "Get: $(cat "$dir/r")"
ok VolumeDriver.List '{}'
[ "$(r '[v.get("Mountpoint") for v in j["Volumes"] if v["Name"] == "v1"][0]')" = "$mp" ] || fail "List: $(cat "$dir/r")"
refused VolumeDriver.Remove '{"Name": "v1"}' "mounted on this node"
refused VolumeDriver.Mount '{"Name": "v1"}' "no \"ID\""

# --- metrics: what Docker asked and what is mounted ---
curl -sf "http://127.0.0.1:$mport/metrics" >"$dir/metrics" || fail "no metrics on :$mport"
promtool check metrics <"$dir/metrics" >"$dir/promtool" 2>&1 || fail "promtool: $(cat "$dir/promtool")"
[ ! -s "$dir/promtool" ] || fail "promtool: $(cat "$dir/promtool")"
for want in 'basalt_docker_requests_total{op="mount"} 3' 'basalt_docker_request_errors_total{op="mount"} 1' \
	'basalt_docker_requests_total{op="create"} 8' 'basalt_docker_request_errors_total{op="create"} 5' \
	'basalt_docker_volumes_mounted 1' 'basalt_docker_volume_users 2' 'basalt_docker_formats_total 1' \
	'basalt_docker_request_latency_seconds_count{op="mount"} 3'; do
	grep -qxF "$want" "$dir/metrics" || fail "metrics: no '$want' in: $(grep '^basalt_docker' "$dir/metrics")"
done

# --- a restart of the plugin keeps the mount ---
kill "${pid[plugin]}"
wait "${pid[plugin]}" || fail "the plugin did not stop cleanly on SIGTERM"
mounted v1 && [ "$(cat "$mp/hello")" = hello ] || fail "SIGTERM took the mount away"
plugin_start
grep -q "volume v1: still mounted on $mp for 2 containers" "$dir/plugin.log" || fail "restart lost v1"

# --- Unmount: the last one unmounts and unlocks ---
ok VolumeDriver.Unmount '{"Name": "v1", "ID": "c1"}'
mounted v1 || fail "Unmount of c1 unmounted what c2 uses"
refused VolumeDriver.Unmount '{"Name": "v1", "ID": "c9"}' "not mounted for container c9"
ok VolumeDriver.Unmount '{"Name": "v1", "ID": "c2"}'
mounted v1 && fail "the last Unmount left the mount"
[ "$(fuse_children)" = 0 ] || fail "basalt-fuse still mounted after the last Unmount"
[ "$(holder v1)" = "" ] || fail "v1 still locked after the last Unmount: $(holder v1)"
refused VolumeDriver.Unmount '{"Name": "v1", "ID": "c2"}' "not mounted on this node"
ok VolumeDriver.Path '{"Name": "v1"}'
[ "$(r 'j["Mountpoint"]')" = "" ] || fail "Path after Unmount: $(cat "$dir/r")"

# --- a second use keeps the files ---
ok VolumeDriver.Mount '{"Name": "v1", "ID": "c3"}'
[ "$(cat "$mp/hello")" = hello ] || fail "the file written at first use is gone"
[ "$(grep -c "formatting it" "$dir/plugin.log")" = 1 ] || fail "v1 formatted again"
exec 6<"$mp/hello" # a file open on the mount: the unmount is refused, the mount kept
refused VolumeDriver.Unmount '{"Name": "v1", "ID": "c3"}' "cannot unmount .*busy"
mounted v1 || fail "a refused Unmount unmounted"
exec 6<&-
ok VolumeDriver.Unmount '{"Name": "v1", "ID": "c3"}'
refused VolumeDriver.Mount '{"Name": "nope", "ID": "c1"}' "no Basalt volume named 'nope'"

# --- data but no filesystem: refused, untouched ---
ok VolumeDriver.Create '{"Name": "raw", "Opts": {"size": "16M"}}'
head -c 1M /dev/urandom >"$dir/junk"
fuse_start fuseH "$hold"
dd if="$dir/junk" of="$hold/volumes/raw" bs=1M seek=4 conv=notrunc,fsync status=none
refused VolumeDriver.Mount '{"Name": "raw", "ID": "c1"}' "holds data but no filesystem"
cmp <(dd if="$hold/volumes/raw" bs=1M skip=4 count=1 status=none) "$dir/junk" || fail "raw's data changed"
[ "$(blkid -p -o value -s TYPE "$hold/volumes/raw" || true)" = "" ] || fail "raw was formatted"
mounted raw && fail "raw mounted"
[ "$(holder raw)" = "" ] || fail "a refused Mount left raw locked"

# --- --takeover wait: a live holder is named, a frozen one taken over ---
exec 5<>"$hold/volumes/pre" # fuseH takes pre's lock
[ "$(holder pre)" != "" ] || fail "fuseH does not hold pre"
refused VolumeDriver.Remove '{"Name": "pre"}' "locked by client.admin on .*pid ${pid[fuseH]}"
refused VolumeDriver.Mount '{"Name": "pre", "ID": "c1"}' "locked by client.admin on .*pid ${pid[fuseH]}"
grep -q "waited 13 s for its lease" "$dir/r" || fail "wait bound: $(cat "$dir/r")"
kill -STOP "${pid[fuseH]}"
ok VolumeDriver.Mount '{"Name": "pre", "ID": "c1"}' # fuseH's lease runs out
mounted pre || fail "pre not mounted after the holder's lease ran out"
[ "$(cli --json blocklist ls | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 1 ] ||
	fail "the frozen holder was not fenced"
ok VolumeDriver.Unmount '{"Name": "pre", "ID": "c1"}'
kill -CONT "${pid[fuseH]}"
exec 5<&-

# --- Remove frees the space at once ---
base=$(used_settled)
ok VolumeDriver.Mount '{"Name": "deflt", "ID": "c1"}'
dd if=/dev/urandom of="$state/mnt/deflt/blob" bs=1M count=24 conv=fsync status=none
ok VolumeDriver.Unmount '{"Name": "deflt", "ID": "c1"}'
wait_for "s['usage']['used_bytes'] > $base + 3 * (24 << 20)" 10 "usage counted deflt's 24 MiB"
full=$(used_settled)
ok VolumeDriver.Remove '{"Name": "deflt"}'
# At once: every object is deleted when Remove answers (the OSDs' usage
# reports follow within their beacon interval).
freed=$(sed -n 's/.*remove deflt: removed; \([0-9]*\) bytes freed/\1/p' "$dir/plugin.log")
[ "${freed:-0}" -ge $((24 << 20)) ] || fail "Remove freed ${freed:-no} bytes"
cli volume ls | grep -qw deflt && fail "deflt still listed"
wait_for "s['usage']['used_bytes'] < $full - 3 * (24 << 20)" 10 "space back after Remove"

# --- fs=xfs at create is what the first mount makes ---
ok VolumeDriver.Create '{"Name": "xv", "Opts": {"size": "320M", "fs": "xfs"}}'
ok VolumeDriver.Mount '{"Name": "xv", "ID": "c1"}'
[ "$(findmnt -n -o FSTYPE "$state/mnt/xv")" = xfs ] || fail "xv is not xfs: $(findmnt "$state/mnt/xv")"
ok VolumeDriver.Unmount '{"Name": "xv", "ID": "c1"}'
ok VolumeDriver.Remove '{"Name": "xv"}'
# fuseH held [fuse]'s metrics_addr all along: the plugin's children serve none.
curl -sf "http://127.0.0.1:$fport/metrics" >"$dir/m.fuse" && grep -q '^basalt_fuse_ops_total' "$dir/m.fuse" ||
	fail "fuseH's metrics on :$fport"
if grep -l "metrics" "$state"/fuse.*.log; then fail "a plugin child served or tried metrics"; fi

# --- bad requests ---
call VolumeDriver.Create '{"Name": "x", '
[ "$code" = 400 ] && r 'j["Err"]' | grep -q "not JSON" || fail "malformed JSON: $code $(cat "$dir/r")"
call VolumeDriver.Create '["x"]'
[ "$code" = 400 ] && r 'j["Err"]' | grep -q "must be a JSON object" || fail "array: $code $(cat "$dir/r")"
call VolumeDriver.Create "{\"Name\": \"$(head -c 70000 /dev/zero | tr '\0' a)\"}"
[ "$code" = 413 ] && r 'j["Err"]' | grep -q "over 65536 bytes" || fail "big body: $code $(cat "$dir/r")"
call VolumeDriver.Nothing '{}'
[ "$code" = 404 ] && r 'j["Err"]' | grep -q "no such call" || fail "unknown call: $code $(cat "$dir/r")"
code=$(curl -sS -o "$dir/r" -w '%{http_code}' --unix-socket "$sock" http://plugin/VolumeDriver.List)
[ "$code" = 405 ] && r 'j["Err"]' | grep -q "POST only" || fail "GET: $code $(cat "$dir/r")"
refused VolumeDriver.Mount '{"Name": 7, "ID": "c1"}' "no \"Name\""
refused VolumeDriver.Create '{"Name": "y", "Opts": {"size": 5}}' "must be a string"

# --- a mount gone while the plugin was down (a reboot) is forgotten ---
ok VolumeDriver.Mount '{"Name": "v1", "ID": "c4"}'
f1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mounts"]["v1"]["fuse_pid"])' "$state/state.json")
kill "${pid[plugin]}"
wait "${pid[plugin]}" || fail "the plugin did not stop cleanly on SIGTERM"
umount "$mp"
kill "$f1"
for _ in $(seq 100); do [ -e "/proc/$f1" ] || break; sleep 0.1; done
plugin_start
grep -q "volume v1: its mount on $mp is gone (the node restarted?): forgetting it" "$dir/plugin.log" ||
	fail "a lost mount was not forgotten"
ok VolumeDriver.Path '{"Name": "v1"}'
[ "$(r 'j["Mountpoint"]')" = "" ] || fail "Path of a forgotten mount: $(cat "$dir/r")"
ok VolumeDriver.Mount '{"Name": "v1", "ID": "c5"}'
[ "$(cat "$mp/hello")" = hello ] || fail "v1 after the restart"
ok VolumeDriver.Unmount '{"Name": "v1", "ID": "c5"}'

kill "${pid[plugin]}"
wait "${pid[plugin]}" || fail "the plugin did not stop cleanly"
unset 'pid[plugin]'
echo "docker_plugin: ok"
