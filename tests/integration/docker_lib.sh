# A Docker "node" on this machine, for tests and bench/docker.sh; sourced.
# Legacy plugins are found under /run/docker/plugins (and /etc/docker/plugins,
# /usr/lib/docker/plugins), so each node gets a mount namespace where those
# are its own, an engine of its own in it, and whatever plugin is started
# there with `nsenter -t "$ns_holder" -m --`.

# docker_ns_start DIR: a mount namespace whose tmpfs /run/docker (and, where
# the host has them, /run/containerd and the plugin spec directories) hides
# the host's; kept alive by a process whose PID goes into ns_holder (kill
# it to end the namespace). 0, or 1 when the namespace did not come up.
docker_ns_start() {
	local d=$1
	mkdir -p "$d" /run/docker
	unshare -m --propagation private sh -c '
		mount -t tmpfs tmpfs /run/docker && mkdir /run/docker/plugins || exit 1
		for p in /run/containerd /etc/docker/plugins /usr/lib/docker/plugins; do
			[ -d "$p" ] && { mount -t tmpfs tmpfs "$p" || exit 1; }
		done
		touch "$0/ns-ready"; exec sleep 100000' "$d" &
	ns_holder=$!
	for _ in $(seq 50); do [ -e "$d/ns-ready" ] && return 0; sleep 0.1; done
	return 1
}

# docker_engine_start HOLDER DIR LOG: dockerd in HOLDER's namespace with its
# data root, exec root, pid file and socket (DIR/docker.sock) under DIR,
# logging to LOG; its PID into ns_dockerd. Returns at once (poll `docker
# -H unix://DIR/docker.sock info` for it to be ready).
docker_engine_start() {
	local holder=$1 d=$2 log=$3
	echo '{}' >"$d/daemon.json"
	nsenter -t "$holder" -m -- dockerd --config-file "$d/daemon.json" --storage-driver=vfs \
		--iptables=false --ip6tables=false --bridge=none --data-root "$d/data" \
		--exec-root "$d/exec" --pidfile "$d/docker.pid" -H "unix://$d/docker.sock" \
		>"$log" 2>&1 &
	ns_dockerd=$!
}
