#!/usr/bin/env bash
# Network partitions between real monitors: each of three monitors runs in
# its own network namespace, joined to the others by a bridge through a
# veth pair. Cutting a monitor's link partitions it (its process runs on).
#   - The leader is cut off while changes stream in: the other two elect a
#     leader and go on committing; the cut-off one, asked from inside its
#     namespace, cannot commit and serves its last map marked stale.
#   - Healed, it catches up to exactly the majority's map.
#   - The same with a follower cut off; its return (PreVote) deposes no one.
# Needs root (namespaces, veth, bridge). Removes everything it created.
#   mon_partition.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: mon_partition.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-mon-part.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
tag=$$
net="10.$((200 + tag % 50)).$((tag / 50 % 250))"
br=bb$tag
teardown() {
	cluster_cleanup
	for m in a b c; do ip netns del "bn$m$tag" 2>/dev/null || true; done
	ip link del "$br" 2>/dev/null || true
	rm -rf "$dir"
}
trap teardown EXIT
[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"

ip link add "$br" type bridge || fail "cannot create a bridge"
ip addr add "$net.254/24" dev "$br"
ip link set "$br" up
i=0
for m in a b c; do
	i=$((i + 1))
	ns=bn$m$tag
	ip netns add "$ns"
	ip link add "bv$m$tag" type veth peer name "bp$m$tag"
	ip link set "bv$m$tag" netns "$ns"
	ip link set "bp$m$tag" master "$br"
	ip link set "bp$m$tag" up
	ip netns exec "$ns" ip addr add "$net.$i/24" dev "bv$m$tag"
	ip netns exec "$ns" ip link set "bv$m$tag" up
	ip netns exec "$ns" ip link set lo up
done
cut() { ip link set "bp$1$tag" down; }
heal() { ip link set "bp$1$tag" up; }
# The CLI from inside monitor $1's namespace, where only it is reachable
# while it is cut off.
cli_in() { local m=$1; shift; ip netns exec "bn$m$tag" "$build/basalt" -c "$dir/basalt.conf" "$@" 2> >(grep -v "may be stale" >&2); }

cluster_conf "a=$net.1:6789 b=$net.2:6789 c=$net.3:6789"
mon_mkfs_all a b c
for m in a b c; do mon_start "$m" ip netns exec "bn$m$tag"; done
leader >/dev/null || fail "no leader"
pools() { # the sorted pool names monitor $1 serves, asked from its namespace
	cli_in "$1" --mon "$1" --timeout 10 --json pool ls |
		python3 -c 'import json,sys; print("\n".join(sorted(p["name"] for p in json.load(sys.stdin))))'
}
term_of() {
	cli --mon "$1" --timeout 10 --json mon ls |
		python3 -c "import json,sys; print([m.get('term', -1) for m in json.load(sys.stdin) if m['name']=='$1'][0])"
}
stale_of() {
	cli_in "$1" --mon "$1" --timeout 10 --json status |
		python3 -c 'import json,sys; s=json.load(sys.stdin); print(str(s.get("stale", False)).lower())'
}

round() { # round NAME ROLE: cut monitor NAME off while changes stream in
	local cutoff=$1 role=$2 before n=0
	for k in $(seq 20); do cli --timeout 20 pool create "$role-before-$k" >/dev/null || fail "create"; done
	converge 1 a b c || fail "no agreement before the partition"
	local lead_before term_before
	lead_before=$(leader)
	term_before=$(term_of "$lead_before")
	cut "$cutoff"
	before=$(cli_in "$cutoff" --mon "$cutoff" --timeout 10 --json mon ls |
		python3 -c "import json,sys; print([m['epoch'] for m in json.load(sys.stdin) if m['name']=='$cutoff'][0])")
	for k in $(seq 30); do
		cli --timeout 20 pool create "$role-during-$k" >/dev/null && n=$((n + 1))
	done
	[ "$n" -eq 30 ] || fail "the majority committed only $n of 30 with mon.$cutoff cut off"
	if cli_in "$cutoff" --timeout 3 pool create "$role-minority" >/dev/null 2>&1; then
		fail "mon.$cutoff committed alone"
	fi
	local after
	after=$(cli_in "$cutoff" --mon "$cutoff" --timeout 10 --json mon ls |
		python3 -c "import json,sys; print([m['epoch'] for m in json.load(sys.stdin) if m['name']=='$cutoff'][0])")
	[ "$before" = "$after" ] || fail "cut-off mon.$cutoff moved from epoch $before to $after"
	[ "$(stale_of "$cutoff")" = true ] || fail "cut-off mon.$cutoff does not mark its map stale"
	pools "$cutoff" >"$dir/pools.cut"
	grep -qx "$role-before-20" "$dir/pools.cut" || fail "cut-off mon.$cutoff stopped serving its map"
	echo "$role mon.$cutoff cut off: the majority committed 30 changes; it stayed at epoch $after, serving its map marked stale"
	heal "$cutoff"
	local target
	target=$(epoch_of "$(leader)")
	converge "$target" a b c || fail "mon.$cutoff did not catch up after healing"
	for m in a b c; do pools "$m" >"$dir/pools.$m"; done
	cmp -s "$dir/pools.a" "$dir/pools.b" && cmp -s "$dir/pools.b" "$dir/pools.c" ||
		fail "the maps differ after healing"
	! grep -qx "$role-minority" "$dir/pools.a" || fail "the minority's change appeared"
	[ "$(stale_of "$cutoff")" = false ] || fail "mon.$cutoff still marks its map stale"
	echo "healed: mon.$cutoff caught up to epoch $target; all three serve the same $(wc -l <"$dir/pools.a") pools"
	if [ "$role" = follower ]; then # PreVote: its return deposes no one
		[ "$(leader)" = "$lead_before" ] && [ "$(term_of "$lead_before")" = "$term_before" ] ||
			fail "the returning follower forced an election (leader mon.$lead_before term $term_before, now mon.$(leader) term $(term_of "$(leader)"))"
		echo "mon.$lead_before still leads in term $term_before: the returning follower forced no election"
	fi
}

round "$(leader)" leader
l=$(leader)
follower=$(printf '%s\n' a b c | grep -v "^$l$" | head -1)
round "$follower" follower
echo PASS
