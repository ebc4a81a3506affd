#!/usr/bin/env bash
# Every `basalt --json` document is JSON, whatever the names in it, and a
# failing command given --json says why in JSON too. On a local cluster
# whose three monitors are named with a quote, a backslash and non-ASCII
# (one with a byte that is not UTF-8), and a client entity named so that
# holds a volume's lock (its owner shows in volume ls/info and, once
# fenced, in blocklist ls):
#  - status, mon ls, osd ls/tree, pool ls, volume ls/info, pg ls/map,
#    object ls/stat, auth ls, blocklist ls parse with python3 -m json.tool
#    and give the names back as they are (the non-UTF-8 byte as '?');
#  - the names the map does not allow (pool, volume, snapshot, client
#    entity) are refused, and the refusal, like every failure under
#    --json, is one JSON object on stderr ({"error", "errno"}) with
#    nothing on stdout and a non-zero exit status.
#   cli_json.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: cli_json.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-cli-json.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
cleanup() {
	exec 3>&- 2>/dev/null || true
	cluster_cleanup
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in qemu-io nbdinfo; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

m1='q"1\é' m2='q"2\é' m3=$'q"3\\\xff'
read -r p1 p2 p3 < <(free_ports 3)
cluster_conf "$m1=127.0.0.1:$p1 $m2=127.0.0.1:$p2 $m3=127.0.0.1:$p3"
entity="client.$m1"
printf '[%s]\nkey = %s\n' "$entity" "$(sed -n 's/^key = //p' "$dir/keyring" | head -1)" >>"$dir/keyring"
osd_conf_local 256M h0 h1 h2
mon_mkfs_all "$m1" "$m2" "$m3"
for m in "$m1" "$m2" "$m3"; do mon_start "$m"; done
leader >/dev/null || fail "no leader"
for i in 0 1 2; do osd_start "$i"; done
wait_for "s['osd']['up']==3" 20 "OSDs up"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
cli volume create vm --size 64M >/dev/null
cli auth add client.ro --caps mon=r >/dev/null
head -c 8192 /dev/urandom >"$dir/obj"
cli object put rbd 7:0 "$dir/obj" >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# doc ARGS...: `basalt --json ARGS` succeeds with one JSON document on
# stdout (left in $dir/doc) and nothing on stderr.
doc() {
	cli --json "$@" >"$dir/doc" 2>"$dir/err" || fail "--json $*: $(cat "$dir/err")"
	python3 -m json.tool "$dir/doc" >/dev/null || fail "--json $* is not JSON: $(cat "$dir/doc")"
	[ ! -s "$dir/err" ] || fail "--json $* wrote to stderr: $(cat "$dir/err")"
}
# jq_ EXPR: a Python expression over d, the last document.
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1], encoding='utf-8')); print($1)" "$dir/doc"; }
# refused ERRNO TEXT ARGS...: `basalt --json ARGS` fails, prints nothing on
# stdout and one JSON object on stderr whose error contains TEXT (ERRNO
# "-": any errno).
refused() {
	local want_errno=$1 want=$2
	shift 2
	if cli --json "$@" >"$dir/out" 2>"$dir/err"; then fail "--json $* succeeded: $(cat "$dir/out")"; fi
	[ ! -s "$dir/out" ] || fail "--json $* failed but printed on stdout: $(cat "$dir/out")"
	python3 - "$dir/err" "$want_errno" "$want" <<'PY' || fail "--json $*: stderr is not the JSON error: $(cat "$dir/err")"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, lines
e = json.loads(lines[0])
assert set(e) == {"error", "errno"}, e
assert sys.argv[2] == "-" or e["errno"] == sys.argv[2], e
assert sys.argv[3] in e["error"], (sys.argv[3], e)
PY
}

# --- names with a quote, a backslash, non-ASCII and a byte not UTF-8 ---
doc status
[ "$(jq_ "sorted(d['mon']['members']) == sorted(['$m1', '$m2', 'q\"3\\\\?']) and d['mon']['leader'] in d['mon']['members'] and len(d['mon']['quorum']) == 3")" = True ] ||
	fail "status names the monitors wrong: $(cat "$dir/doc")"
[ "$(jq_ "d['health'] == 'OK' and d['health_level'] == 'OK' and d['health_reasons'] == []")" = True ] ||
	fail "status health: $(cat "$dir/doc")"
doc mon ls
[ "$(jq_ "sorted(m['name'] for m in d) == sorted(['$m1', '$m2', 'q\"3\\\\?']) and all(m['leader'] == d[0]['leader'] for m in d)")" = True ] ||
	fail "mon ls: $(cat "$dir/doc")"
for m in "$m1" "$m2"; do
	cli --json --mon "$m" --timeout 10 status >"$dir/doc" || fail "--mon $m"
	python3 -m json.tool "$dir/doc" >/dev/null || fail "status from mon.$m is not JSON"
done
echo "status and mon ls: monitors named $m1, $m2 and one not UTF-8 come back as JSON"

# A client named so holds the volume's lock: its name is the lock owner.
read -r port < <(free_ports 1)
"$build/basalt-nbd" -c "$dir/basalt.conf" --name "$entity" --log-file "$dir/nbd.log" \
	--listen "127.0.0.1:$port" 3>&- &
pid[nbd]=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/nbd.log" 2>/dev/null && break; sleep 0.1; done
# basalt-nbd listens before its first map has come: wait until it knows vm.
for _ in $(seq 50); do nbdinfo --list "nbd://127.0.0.1:$port" 2>/dev/null | grep -q 'export="vm"' && break; sleep 0.1; done
mkfifo "$dir/q.fifo"
qemu-io -f raw "nbd://127.0.0.1:$port/vm" <"$dir/q.fifo" >"$dir/q.out" 2>&1 3>&- &
pid[qemu-io]=$!
exec 3>"$dir/q.fifo"
echo "write -P 0x11 0 64k" >&3
for _ in $(seq 100); do grep -q "wrote 65536/65536" "$dir/q.out" && break; sleep 0.1; done
grep -q "wrote 65536/65536" "$dir/q.out" || fail "the write through basalt-nbd: $(cat "$dir/q.out")"
doc volume info vm
[ "$(jq_ "d['lock']['owner'].startswith('$entity on ') and d['objects'] == 1")" = True ] ||
	fail "volume info does not name the holder $entity: $(cat "$dir/doc")"
doc volume ls
[ "$(jq_ "d[0]['lock']['owner'].startswith('$entity on ')")" = True ] || fail "volume ls: $(cat "$dir/doc")"
refused EBUSY "is in use: locked by $entity on " volume rm vm
cli volume unlock vm --force >/dev/null || fail "unlock --force"
doc blocklist ls
[ "$(jq_ "d[0]['owner'].startswith('$entity on ')")" = True ] || fail "blocklist ls: $(cat "$dir/doc")"
exec 3>&-
echo "volume ls/info and blocklist ls: the lock owner $entity comes back as JSON"

for args in "osd ls" "osd tree" "pool ls" "pg ls rbd" "pg map rbd 3" "object ls rbd" \
	"object stat rbd 7:0" "auth ls"; do
	# shellcheck disable=SC2086
	doc $args
done
[ "$(jq_ "d == [{'entity': 'client.ro', 'caps': 'mon=r'}]")" = True ] || fail "auth ls: $(cat "$dir/doc")"
echo "osd ls/tree, pool ls, pg ls/map, object ls/stat, auth ls: JSON"

# Commands that change something answer in JSON too.
doc object put rbd 7:1 "$dir/obj"
[ "$(jq_ "d['bytes'] == 8192 and d['version'] > 0")" = True ] || fail "object put: $(cat "$dir/doc")"
doc object rm rbd 7:1
doc auth caps client.ro mon=rw
[ "$(jq_ "d['result'] == 'done' and d['epoch'] > 0")" = True ] || fail "auth caps: $(cat "$dir/doc")"
doc auth add client.k2
[ "$(jq_ "d['entity'] == 'client.k2' and len(d['key']) > 40")" = True ] || fail "auth add: $(cat "$dir/doc")"
doc pg scrub 1.0
doc osd scrub 0
doc volume resize vm 128M
[ "$(jq_ "d['size'] == 128 << 20")" = True ] || fail "volume resize: $(cat "$dir/doc")"
doc osd set-full-ratio 0.95
echo "object put/rm, auth caps/add, pg/osd scrub, volume resize, osd set-full-ratio: JSON"

# --- names the map refuses, and failures, as JSON errors ---
refused EINVAL "'$m1' is not a valid pool name" pool create "$m1"
refused EINVAL "'$m1' is not a valid volume name" volume create "$m1" --size 1M
refused EINVAL "'$m1' is not a valid snapshot name" volume snap create vm "$m1"
refused EINVAL "'client.$m1' is not a client entity" auth add "client.$m1"
cli --json pool ls >"$dir/doc"
[ "$(jq_ "[p['name'] for p in d]")" = "['rbd']" ] || fail "a refused pool was created: $(cat "$dir/doc")"
refused ENOENT "volume 'nope' does not exist" volume info nope
refused ENOENT "pool 'nope' does not exist" pg ls nope
refused EINVAL "an erasure-coded pool's size is K+M (3): drop --size" pool create ec --ec 2+1 --size 3
refused ENAMETOOLONG "a volume name is at most 63 characters" volume create "$(printf 'v%.0s' $(seq 200))" --size 1M
refused EINVAL "unknown command" frobnicate
# Output that cannot be written is a failure, not a silent loss.
if cli --json pool ls >/dev/full 2>"$dir/err"; then fail "--json pool ls >/dev/full succeeded"; fi
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["errno"] == "ENOSPC" and "cannot write the output" in e["error"], e' \
	"$dir/err" || fail "--json pool ls >/dev/full: $(cat "$dir/err")"
# No monitor answers at all: still one JSON error.
read -r dead < <(free_ports 1)
printf '[global]\nfsid = %s\n[mon.a]\naddr = 127.0.0.1:%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
	"$dead" >"$dir/dead.conf"
if "$build/basalt" -c "$dir/dead.conf" --keyring "$dir/keyring" --timeout 2 --json status \
	>"$dir/out" 2>"$dir/err"; then fail "status with no monitor succeeded"; fi
[ ! -s "$dir/out" ] && python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["error"] and e["errno"], e' \
	"$dir/err" || fail "status with no monitor, --json: $(cat "$dir/out" "$dir/err")"
echo "refusals and failures under --json: one JSON error on stderr, nothing on stdout, exit non-zero"
echo "PASS cli_json"
