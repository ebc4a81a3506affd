#!/usr/bin/env bash
# Full ratios and pool quotas as a user sees them, on a real cluster: 3
# monitors, 3 OSDs of 128 MiB, pool rbd of size 3 with 16 PGs, objects of
# 128 KiB through `basalt object put`. The ratios are set just around what
# the OSDs use, read from `basalt --json status`:
#  1. nearfull just above the use: health stays OK; just below: WARN naming
#     the three OSDs and the pool, writes go on; raised back: OK;
#  2. full just below the use (nearfull and backfillfull below it): within
#     seconds a write is refused with "pool 'rbd' is full: ...", health is
#     ERR naming the full OSDs, the pool shows full; reads and deletes work
#     on the full cluster and the deletes give space back at once; once
#     enough is freed writes succeed again; every object reads back exact;
#  3. a pool quota a little above what the pool stores: writes past it are
#     refused ("reached its quota"), health WARN names the pool, deletes
#     go on; max_bytes 0: writes work again;
#  4. backfillfull holds recovery: osd.2 killed, objects written (their
#     third copies missing), the backfillfull ratio set below what osd.2
#     uses, osd.2 restarted: its PGs show backfill_toofull and not one
#     missing copy is recovered for 10 s; the ratio raised: every PG
#     active+clean, every object reads back exact.
#   full_ratios.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: full_ratios.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-fullratios.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
trap 'cluster_cleanup; rm -rf "$dir"' EXIT
t0=$SECONDS

cluster_up_local 128M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 16 >/dev/null
wait_for "s['pgs'].get('active+clean')==16" 30 "PGs active+clean"

# Objects by number: name 1:N (hex), contents in $dir/o.N; live[N] set
# while the object exists.
declare -A live
next=0
name() { printf '1:%x' "$1"; }
# put_new: one more 128 KiB object, which must be written.
put_new() {
	head -c 131072 /dev/urandom >"$dir/o.$next"
	cli --timeout 30 object put rbd "$(name $next)" "$dir/o.$next" >/dev/null 2>"$dir/err" ||
		fail "writing object $(name $next) ($1): $(cat "$dir/err")"
	live[$next]=1
	next=$((next + 1))
}
# try_put: one more object; 0 if written (then it is live), 1 if refused
# (the error in $dir/err, and the object must not exist).
try_put() {
	head -c 131072 /dev/urandom >"$dir/o.$next"
	if cli --timeout 30 object put rbd "$(name $next)" "$dir/o.$next" >/dev/null 2>"$dir/err"; then
		live[$next]=1
		next=$((next + 1))
		return 0
	fi
	cli object stat rbd "$(name $next)" >/dev/null 2>"$dir/stat.err" &&
		fail "a refused write left object $(name $next) behind"
	grep -q "no such object" "$dir/stat.err" || fail "stat after a refused write: $(cat "$dir/stat.err")"
	next=$((next + 1))
	return 1
}
rm_obj() {
	cli object rm rbd "$(name "$1")" >/dev/null 2>"$dir/err" || fail "rm $(name "$1") ($2): $(cat "$dir/err")"
	unset "live[$1]"
}
# check_all WHEN: every live object reads back byte-exact.
check_all() {
	local n=0
	for k in "${!live[@]}"; do
		cli object get rbd "$(name "$k")" "$dir/back" >/dev/null 2>"$dir/err" ||
			fail "reading $(name "$k") ($1): $(cat "$dir/err")"
		cmp -s "$dir/o.$k" "$dir/back" || fail "object $(name "$k") differs ($1)"
		n=$((n + 1))
	done
	echo "  $n objects read back byte-exact ($1)"
}
# used: the up OSDs' used ratios ("0.0952 0.0952 0.0952"), once the
# beacons have caught up with the writes (two reads 2.5 s apart agree).
used() {
	local a b
	a=$(js "' '.join(str(o['used_ratio']) for o in s['fullness']['osds'] if 'used_ratio' in o)")
	for _ in $(seq 8); do
		sleep 2.5
		b=$(js "' '.join(str(o['used_ratio']) for o in s['fullness']['osds'] if 'used_ratio' in o)")
		[ "$a" = "$b" ] && { echo "$b"; return 0; }
		a=$b
	done
	fail "the OSDs' used ratios do not settle: $b"
}
# ratio EXPR: EXPR over lo/hi (the least and most used OSD), 4 decimals.
ratio() { python3 -c "lo, hi = min($u), max($u); print(f'{$1:.4f}')" ; }
states() { js "' '.join(o['state'] for o in s['fullness']['osds'])"; }
health() { js "s['health']"; }
set_ratio() { cli osd "set-$1-ratio" "$2" >/dev/null || fail "osd set-$1-ratio $2"; }

# --- 1. nearfull -------------------------------------------------------------------
for _ in $(seq 60); do put_new "filling"; done
u=$(used | tr ' ' ,)
echo "1. $next objects written; the OSDs use $u of their data blocks"
set_ratio nearfull "$(ratio 'hi + 0.01')"
sleep 5 # more than two beacons
[ "$(health)" = OK ] && [ "$(states)" = "ok ok ok" ] ||
	fail "nearfull $(ratio 'hi + 0.01'), above every OSD's use, changed health: $(health) ($(states))"
set_ratio nearfull "$(ratio 'lo - 0.01')"
wait_for "all(o['state']=='nearfull' for o in s['fullness']['osds'])" 10 "OSDs nearfull"
h=$(health)
[[ "$h" =~ ^WARN:\ 3\ OSDs\ nearfull:\ osd\.0\ \([0-9]+%\),\ osd\.1\ \([0-9]+%\),\ osd\.2\ \([0-9]+%\)\ \(pools\ rbd\)$ ]] ||
	fail "health with the OSDs past nearfull: $h"
echo "  nearfull $(ratio 'lo - 0.01'): $h"
put_new "nearfull only warns"
set_ratio nearfull 0.85
wait_for "s['health']=='OK'" 10 "health OK with nearfull back at 0.85"
echo "  nearfull 0.85 again: OK"

# --- 2. full -------------------------------------------------------------------------
u=$(used | tr ' ' ,)
full=$(ratio 'lo - 0.01')
set_ratio nearfull "$(ratio 'lo - 0.03')"
set_ratio backfillfull "$(ratio 'lo - 0.02')"
set_ratio full "$full"
# Writes go on until the OSDs' next beacons; then they are refused. Until
# the client's map says the pool is full, a refusal by an OSD that knows
# itself full reads "no space left on an OSD of pg ..."; from then on
# "pool 'rbd' is full: ...".
start=$SECONDS
first=
for _ in $(seq 30); do
	if ! try_put; then
		[ -n "$first" ] || first="$(($SECONDS - start)) s: $(cat "$dir/err")"
		grep -q "^basalt: pool 'rbd' is full: osd\.[0-2] is full (past the full ratio 0\\.[0-9]*); delete data, add OSDs, or raise the full ratio$" "$dir/err" &&
			break
		grep -q "^basalt: no space left on an OSD of pg 1\.[0-9a-f]: delete data or add OSDs$" "$dir/err" ||
			fail "a write refused on the full cluster said: $(cat "$dir/err")"
	fi
	sleep 0.5
done
grep -q "^basalt: pool 'rbd' is full: " "$dir/err" ||
	fail "writes not refused as 'pool is full' $((SECONDS - start)) s after full ratio $full (use $u): $(cat "$dir/err")"
echo "2. full ratio $full (use $u): the first write refused after $first"
echo "  after $((SECONDS - start)) s: $(cat "$dir/err")"
wait_for "s['health'].startswith('ERR: 3 OSDs full: osd.0 (')" 10 "health ERR naming the full OSDs"
h=$(health)
[[ "$h" =~ ^ERR:\ 3\ OSDs\ full:\ osd\.0\ \([0-9]+%\),\ osd\.1\ \([0-9]+%\),\ osd\.2\ \([0-9]+%\)\;\ client\ writes\ are\ refused ]] ||
	fail "health with the OSDs full: $h"
echo "  $h"
[ "$(js "[(p['name'], p['full'], p['available_bytes']) for p in s['pool_usage']]")" = "[('rbd', True, 0)]" ] ||
	fail "pool_usage on the full cluster: $(js "s['pool_usage']")"
[ "$(states)" = "full full full" ] || fail "OSD states on the full cluster: $(states)"
try_put && fail "a write succeeded on the full cluster"
check_all "on the full cluster"
used >/dev/null
used_before=$(js "s['usage']['used_bytes']")
k=0
for n in "${!live[@]}"; do
	[ $k -lt 30 ] || break
	rm_obj "$n" "on the full cluster"
	k=$((k + 1))
	gone=$n
done
cli object get rbd "$(name "$gone")" "$dir/back" >/dev/null 2>"$dir/err" && fail "a removed object reads back"
grep -q "no such object" "$dir/err" || fail "reading a removed object: $(cat "$dir/err")"
wait_for "s['usage']['used_bytes'] <= $used_before - 30 * 3 * 131072" 6 "space back after 30 deletes on the full cluster"
echo "  30 objects removed on the full cluster: $(((used_before - $(js "s['usage']['used_bytes']")) / 1048576)) MiB back within a beacon"
wait_for "not s['pool_usage'][0]['full'] and 'full' not in [o['state'] for o in s['fullness']['osds']]" 10 \
	"OSDs below the full ratio again"
try_put || fail "a write after freeing space: $(cat "$dir/err")"
echo "  writes succeed again; $(health)"
set_ratio full 0.95
set_ratio backfillfull 0.90
set_ratio nearfull 0.85
wait_for "s['health']=='OK'" 10 "health OK with the default ratios"
check_all "after the full cluster"

# --- 3. pool quota -------------------------------------------------------------------
wait_for "s['usage']['objects']==${#live[@]}" 10 "every object counted"
stored=$(js "s['pool_usage'][0]['stored_bytes']")
[ "$stored" -ge $((${#live[@]} * 131072)) ] || fail "pool rbd stores $stored bytes for ${#live[@]} objects"
quota=$((stored + 4 * 131072))
cli pool set rbd max_bytes "$quota" >/dev/null || fail "pool set rbd max_bytes $quota"
for _ in 1 2 3; do put_new "below the quota"; done
wait_for "s['usage']['objects']==${#live[@]}" 10 "every object counted"
sleep 2.5
r=$(js "s['pool_usage'][0]['full'], s['pool_usage'][0]['max_bytes'], s['health']")
[ "$r" = "False $quota OK" ] || fail "3 objects below the quota $quota: $r"
put_new "up to the quota (the monitors see it after a beacon)"
put_new "past the quota (the monitors see it after a beacon)"
wait_for "s['pool_usage'][0]['full']" 10 "pool rbd full at its quota"
h=$(health)
[[ "$h" =~ ^WARN:\ pool\ \'rbd\'\ reached\ its\ quota\ \(max_bytes\ [^\)]+\):\ writes\ to\ it\ are\ refused$ ]] ||
	fail "health with pool rbd at its quota: $h"
try_put && fail "a write past the quota succeeded"
grep -q "^basalt: pool 'rbd' is full: pool 'rbd' reached its quota of $quota bytes; delete data, add OSDs, or raise the pool's max_bytes$" "$dir/err" ||
	fail "the write past the quota said: $(cat "$dir/err")"
echo "3. quota $quota bytes (it stored $stored): $(cat "$dir/err")"
echo "  $h"
[ "$(states)" = "ok ok ok" ] || fail "a pool quota changed the OSDs' states: $(states)"
for n in "${!live[@]}"; do break; done
rm_obj "$n" "at the quota"
cli pool set rbd max_bytes 0 >/dev/null || fail "pool set rbd max_bytes 0"
wait_for "not s['pool_usage'][0]['full'] and s['health']=='OK'" 10 "pool rbd without a quota"
try_put || fail "a write without the quota: $(cat "$dir/err")"
echo "  max_bytes 0: writes work again, health OK"

# --- 4. backfillfull holds recovery ---------------------------------------------------
u=$(used | tr ' ' ,)
u2=$(js "s['fullness']['osds'][2]['used_ratio']")
osd_kill 2
wait_for "s['osd']['up']==2" 20 "osd.2 marked down"
before=$next
for _ in $(seq 16); do put_new "osd.2 down"; done
wait_for "s['recovery']['degraded_copies']==${#live[@]}" 20 "one copy of each object missing"
bf=$(python3 -c "print(f'{$u2 - 0.01:.4f}')")
set_ratio nearfull "$bf"
set_ratio backfillfull "$bf"
sleep 1
echo "4. osd.2 (it used $u2) down while $((next - before)) objects were written; backfillfull $bf" \
	"(osd.2's state in the map: $(js "s['fullness']['osds'][2]['state']")); osd.2 restarted"
osd_start 2
wait_for "s['osd']['up']==3 and all(k=='total' or k.startswith('active') for k in s['pgs'])" 30 \
	"osd.2 up and every PG active"
for i in $(seq 10); do
	r=$(js "s['recovery']['degraded_copies'], sorted(k for k in s['pgs'] if k != 'total'), s['health']")
	[ "$i" = 1 ] && echo "  $r"
	[[ "$r" == "$((next - before)) "*backfill_toofull* ]] ||
		fail "recovery to osd.2 past backfillfull $bf ($i s after its PGs were active): $r
$(cli pg ls rbd)
$(grep -h "recovery\|backfillfull\|is up in map" "$dir"/osd.*.log | sort | tail -n 30)"
	sleep 1
done
cli --json pg ls rbd | python3 -c '
import json, sys
pgs = json.load(sys.stdin)
held = [p["pgid"] for p in pgs if "degraded" in p["state"]]
assert held and all("backfill_toofull" in p["state"] for p in pgs if p["pgid"] in held), pgs
print(f"  still held after 10 s: PGs {held} (degraded+backfill_toofull in pg ls)")' ||
	fail "pg ls while recovery is held: $(cli pg ls rbd)"
[[ "$(health)" == *"3 OSDs backfillfull: osd.0 ("*"recovery will not move data to them"* ]] ||
	fail "health while backfillfull: $(health)"
put_new "backfillfull does not stop client writes"
set_ratio backfillfull 0.90
set_ratio nearfull 0.85
wait_for "s['pgs'].get('active+clean')==16 and s['recovery']['degraded_copies']==0 and s['health']=='OK'" 60 \
	"recovery after backfillfull was raised"
echo "  backfillfull 0.90 again: every PG active+clean"
check_all "after recovery"
echo "PASS ($((SECONDS - t0)) s)"
