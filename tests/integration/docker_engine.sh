#!/usr/bin/env bash
# basalt-docker under a real Docker engine: two "nodes", each a mount
# namespace of its own (its /run/docker, where the engine finds legacy
# plugins, is a private tmpfs) with its own dockerd (vfs, no iptables, no
# bridge; data root, exec root, pid file and socket under the test dir)
# and its own plugin, over one local Basalt cluster (mon_lock_lease = 3s):
#  - docker volume create -d basalt --opt size=... on node 1;
#  - a container on node 1 writes files and stops; a container on node 2
#    mounts the same volume and sees them;
#  - node 1 runs a container with the volume mounted and is frozen (its
#    plugin's basalt-fuse child stopped with SIGSTOP) while that container
#    writes more; node 2 (--takeover break) mounts the volume: node 1 is
#    fenced (basalt blocklist ls), and once resumed its late writes fail
#    and never land (a fresh mount on node 2 has none of them);
#  - docker volume rm frees the volume's space at once;
#  - docker swarm init + docker service create --mount
#    type=volume,volume-driver=basalt: the task writes into the volume.
#   docker_engine.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: docker_engine.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-dockerd.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/docker_lib.sh"
declare -A holder
image=basalt-test:1

cleanup() {
	set +e
	for n in 2 1; do # the engines first: stopping containers unmounts through the plugins
		p=${pid[docker$n]:-}
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for n in 1 2; do
		[ -n "${pid[plugin$n]:-}" ] && kill "${pid[plugin$n]}" 2>/dev/null && wait "${pid[plugin$n]}" 2>/dev/null
		f=$dir/n$n/state/state.json
		[ -e "$f" ] || continue
		for p in $(python3 -c 'import json,sys; [print(m["fuse_pid"]) for m in json.load(open(sys.argv[1]))["mounts"].values()]' "$f"); do
			kill -CONT "$p"; kill "$p"
		done
	done
	# A namespace's mounts go when its last process does.
	for n in 1 2; do [ -n "${holder[$n]:-}" ] && kill "${holder[$n]}" && wait "${holder[$n]}"; done 2>/dev/null
	for m in $(awk -v d="$dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in dockerd docker containerd runc unshare nsenter busybox curl mkfs.ext4; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

cluster_up_local 1G "mon_lock_lease = 3s"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# node_up N PLUGIN_ARGS...: node N's namespace, engine and plugin.
node_up() {
	local n=$1 d=$dir/n$1
	shift
	docker_ns_start "$d" || fail "node $n: no mount namespace"
	holder[$n]=$ns_holder
	nsenter -t "${holder[$n]}" -m -- "$build/basalt-docker" -f -c "$dir/basalt.conf" \
		--state-dir "$d/state" --log-file "$dir/plugin$n.log" "$@" &
	pid[plugin$n]=$!
	docker_engine_start "${holder[$n]}" "$d" "$dir/docker$n.log"
	pid[docker$n]=$ns_dockerd
	for _ in $(seq 150); do
		grep -q "serving Docker on /run/docker/plugins/basalt.sock" "$dir/plugin$n.log" 2>/dev/null &&
			dk "$n" info >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "node $n: the engine or the plugin did not start"
}
dk() { local n=$1; shift; docker -H "unix://$dir/n$n/docker.sock" "$@"; }
fuse_pid_of() { # fuse_pid_of N VOLUME: node N's basalt-fuse child for VOLUME
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mounts"][sys.argv[2]]["fuse_pid"])' \
		"$dir/n$1/state/state.json" "$2"
}
vol() { echo "type=volume,source=$1,target=/data,volume-driver=basalt"; }

node_up 1
node_up 2 --takeover break

# A busybox-static root as the image, on both engines.
mkdir -p "$dir/root/bin" "$dir/root/tmp"
cp "$(command -v busybox)" "$dir/root/bin/busybox"
for a in $("$dir/root/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$dir/root/bin/$a"; done
for n in 1 2; do tar -C "$dir/root" -c . | dk "$n" import - "$image" >/dev/null || fail "docker import on node $n"; done

# --- create on node 1; files written there are seen on node 2 ---
dk 1 volume create -d basalt --opt size=128M shared >/dev/null || fail "docker volume create"
[ "$(cli --json volume info shared | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = $((128 << 20)) ] ||
	fail "no 128M Basalt volume: $(cli volume ls)"
dk 1 volume create -d basalt --opt size=lots bad 2>"$dir/err" && fail "a bad size was accepted"
grep -q "'lots' is not a size" "$dir/err" || fail "bad size: $(cat "$dir/err")"
dk 1 run --rm --mount "$(vol shared)" "$image" sh -c 'echo one >/data/a && seq 1000 >/data/b &&
	dd if=/dev/urandom of=/data/blob bs=1M count=8 2>/dev/null' ||
	fail "node 1's container could not write"
dk 2 run --rm --mount "$(vol shared)" "$image" sh -c 'cat /data/a; tail -1 /data/b' >"$dir/out" ||
	fail "node 2's container could not read"
[ "$(tr '\n' ' ' <"$dir/out")" = "one 1000 " ] || fail "node 2 sees: $(cat "$dir/out")"

# --- node 1 frozen with the volume mounted; node 2 takes over ---
dk 1 run -d --name held --mount "$(vol shared)" "$image" sh -c 'cat /data/a /data/b >/dev/null; sleep 1000' >/dev/null
fuse1=$(fuse_pid_of 1 shared)
sleep 0.5 # the container has read /data
kill -STOP "$fuse1"
# Written while node 1 is frozen: into node 1's page cache; the flush
# blocks on the frozen basalt-fuse.
dk 1 exec -d held sh -c 'echo late >/data/late; seq 5000 >/data/b; sync; echo synced >/tmp/done'
sleep 1
dk 2 run -d --name taker --mount "$(vol shared)" "$image" sleep 1000 >/dev/null ||
	fail "node 2 could not take the volume over"
grep -q "mount shared: .*for container" "$dir/plugin2.log" || fail "node 2 did not mount"
cli --json blocklist ls >"$dir/fenced"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$dir/fenced")" = 1 ] ||
	fail "node 1 not fenced: $(cli blocklist ls)"
kill -CONT "$fuse1"
for _ in $(seq 100); do grep -q "was fenced" "$dir/n1/state/fuse.shared.log" && break; sleep 0.1; done
grep -q "was fenced" "$dir/n1/state/fuse.shared.log" || fail "node 1's basalt-fuse did not learn it was fenced"
# Node 1's flush has run (and failed: the OSDs refuse a fenced client)
# before node 2 looks.
for _ in $(seq 100); do [ "$(dk 1 exec held cat /tmp/done 2>/dev/null)" = synced ] && break; sleep 0.1; done
[ "$(dk 1 exec held cat /tmp/done 2>/dev/null)" = synced ] || fail "node 1's sync never returned"
dk 2 rm -f taker >/dev/null
dk 2 run --rm --mount "$(vol shared)" "$image" sh -c 'ls /data; tail -1 /data/b' >"$dir/out"
grep -qx late "$dir/out" && fail "node 1's late write landed: $(cat "$dir/out")"
[ "$(tail -1 "$dir/out")" = 1000 ] || fail "node 1's late rewrite of b landed: $(cat "$dir/out")"
grep -qx a "$dir/out" || fail "node 1's files before the freeze are gone: $(cat "$dir/out")"
dk 1 rm -f held >/dev/null || fail "node 1 could not drop its fenced container"

# --- docker volume rm frees the space at once ---
for _ in $(seq 50); do [ "$(cli --json volume info shared | python3 -c 'import json,sys; print(json.load(sys.stdin)["lock"] is None)')" = True ] && break; sleep 0.2; done
wait_for "s['usage']['used_bytes'] > 0" 10 "usage reported"
full=$(used_settled)
dk 2 volume rm shared >/dev/null || fail "docker volume rm: $(tail -3 "$dir/plugin2.log")"
cli volume ls | grep -qw shared && fail "shared still in the cluster"
freed=$(sed -n 's/.*remove shared: removed; \([0-9]*\) bytes freed/\1/p' "$dir/plugin2.log")
[ "${freed:-0}" -ge $((8 << 20)) ] || fail "docker volume rm freed ${freed:-no} bytes"
wait_for "s['usage']['used_bytes'] <= $full - 3 * $freed" 10 "space back after docker volume rm"

# --- a Swarm service's task writes into a Basalt volume ---
read -r sport < <(free_ports 1)
dk 2 swarm init --advertise-addr "127.0.0.1:$sport" --listen-addr "127.0.0.1:$sport" >/dev/null ||
	fail "docker swarm init: $(tail -5 "$dir/docker2.log")"
dk 2 service create -q --detach --name svc --no-resolve-image --restart-condition none \
	--mount "$(vol svcvol),volume-opt=size=64M" "$image" sh -c 'echo from-service >/data/s' >/dev/null ||
	fail "docker service create"
for _ in $(seq 150); do
	state=$(dk 2 service ps svc --format '{{.CurrentState}} {{.Error}}' 2>/dev/null | head -1)
	case $state in Complete*|Failed*|Rejected*) break ;; esac
	sleep 0.2
done
case $state in Complete*) ;; *) fail "the service's task: $state" ;; esac
dk 2 service rm svc >/dev/null
for _ in $(seq 50); do [ -z "$(dk 2 ps -aq)" ] && break; sleep 0.2; done
dk 2 run --rm --mount "$(vol svcvol)" "$image" cat /data/s >"$dir/out" || fail "reading svcvol"
[ "$(cat "$dir/out")" = from-service ] || fail "the task wrote: $(cat "$dir/out")"
dk 2 volume rm svcvol >/dev/null || fail "docker volume rm svcvol"
dk 2 swarm leave --force >/dev/null
echo "docker_engine: ok"
