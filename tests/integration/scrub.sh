#!/usr/bin/env bash
# Self-healing as a user meets it: objects of 128 KiB on 3 OSDs, a pool of
# size 3; bytes flipped in copies of them on the OSDs' device files, as a
# failing disk would (tests/integration/flip.py):
#  1. the primary's copy, OSD stopped: once it runs again, `object get`
#     returns the right bytes and the copy is repaired (fsck clean);
#  2. the primary's copy under the running OSD (O_DIRECT): the same;
#  3. a replica's copy: `pg deep-scrub --wait` finds and repairs it, pg ls
#     counts it; one damaged under a stopped OSD: fsck names it, and a
#     light `pg scrub` finds the same copy;
#  4. two of three copies: the third serves, a deep scrub repairs both;
#  5. all three: reads fail with an error (never wrong bytes), the object
#     is named by pg ls --inconsistent and by status (health ERR), and it
#     can still be deleted;
#  6. an unreadable range (osd_debug_bad_range) under the primary's copy:
#     as a checksum failure, read and repaired;
#  7. through basalt-nbd: a volume's block damaged on its primary reads
#     back right through qemu-img;
#  8. fio verify=crc32c through basalt-nbd while every OSD deep-scrubs
#     over and over: no error, and no copy called bad.
#   scrub.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: scrub.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-scrub.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
flip="$(dirname "$0")/flip.py"
trap 'cluster_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

cluster_up_local 256M "osd_heartbeat_interval = 200ms
osd_heartbeat_grace = 1500ms"
cli pool create rbd --size 3 --pg-num 8 >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"

# put NAME: a new object of 128 KiB of random bytes (kept in $dir/NAME).
put() {
	head -c 131072 /dev/urandom >"$dir/$1"
	cli object put rbd "$1" "$dir/$1" >/dev/null || fail "put $1"
}
# get NAME: reads it back and compares.
get() {
	cli object get rbd "$1" "$dir/back" >/dev/null 2>"$dir/get.err" || return 1
	cmp -s "$dir/$1" "$dir/back" || fail "object $1 read back other bytes"
}
# acting NAME: its acting OSDs, primary first ("0 2 1").
acting() { cli --json object stat rbd "$1" | python3 -c 'import json,sys; print(*json.load(sys.stdin)["acting"])'; }
pgid() { cli --json object stat rbd "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pg"])'; }
pgjs() { # pgjs PGID EXPR over p, the PG's pg ls --json entry
	cli --json pg ls rbd | python3 -c "import json,sys; p=[x for x in json.load(sys.stdin) if x['pgid']=='$1'][0]; print($2)"
}
fsck_osd() {
	osd_kill "$1"
	"$build/basalt-osd" --fsck --device "$dir/osd.$1.img" >"$dir/fsck.$1" 2>&1 ||
		fail "osd.$1's store is not clean: $(tail -3 "$dir/fsck.$1")"
	osd_start "$1"
	wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.$1 back"
}

# 1. The primary's copy, damaged while its OSD is stopped. (Once the
# store has checkpointed the write, 200 ms after the last: damage to a
# block whose write is the journal's last batch cannot be told from a
# write the crash cut short, and replay drops that batch instead.)
put 200:0
read -r p r1 r2 <<<"$(acting 200:0)"
sleep 1
osd_kill "$p"
"$flip" "$dir/osd.$p.img" "$dir/200:0" >/dev/null || fail "flip on osd.$p"
"$build/basalt-osd" --fsck --device "$dir/osd.$p.img" >"$dir/fsck" 2>&1 &&
	fail "fsck calls the damaged store clean: $(cat "$dir/fsck")"
grep -q "checksum mismatch" "$dir/fsck" || fail "fsck: $(tail -3 "$dir/fsck")"
osd_start "$p"
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.$p back"
[ "$(acting 200:0 | cut -d' ' -f1)" = "$p" ] || fail "osd.$p is not 200:0's primary any more"
get 200:0 || fail "reading 200:0 after its primary's copy was damaged: $(cat "$dir/get.err")"
grep -q "the copy of 1:200:0 on osd.$p is bad" "$dir/osd.$p.log" || fail "osd.$p did not say it repaired 200:0"
echo "1. primary's copy damaged (OSD stopped): the read returned the right bytes and repaired it"
fsck_osd "$p"
echo "   osd.$p's store is clean again"

# 2. The same under the running OSD.
put 200:1
read -r p r1 r2 <<<"$(acting 200:1)"
"$flip" "$dir/osd.$p.img" "$dir/200:1" >/dev/null || fail "flip on osd.$p"
get 200:1 || fail "reading 200:1 with its primary's copy damaged: $(cat "$dir/get.err")"
get 200:1 || fail "reading 200:1 again"
grep -q "the copy of 1:200:1 on osd.$p is bad" "$dir/osd.$p.log" || fail "osd.$p did not say it repaired 200:1"
echo "2. primary's copy damaged under the running osd.$p: right bytes, repaired"
fsck_osd "$p"

# 3. A replica's copy: found by a deep scrub.
put 200:2
read -r p r1 r2 <<<"$(acting 200:2)"
pg=$(pgid 200:2)
found0=$(pgjs "$pg" "p['bad_copies_found']")
"$flip" "$dir/osd.$r1.img" "$dir/200:2" >/dev/null || fail "flip on osd.$r1"
get 200:2 || fail "reading 200:2 (its primary's copy is good)"
cli pg deep-scrub "$pg" --wait >/dev/null || fail "deep scrub of pg $pg"
wait_for "s['pgs'].get('active+clean')==8" 30 "pg $pg clean after its repair"
[ "$(pgjs "$pg" "p['bad_copies_found'] - $found0")" = 1 ] || fail "pg $pg: $(pgjs "$pg" p)"
grep -q "pg $pg scrub: the copy of 1:200:2 on osd.$r1 fails its checksums: repairing it" \
	"$dir/osd.$p.log" || fail "the scrub did not name the bad copy"
echo "3. a replica's copy (osd.$r1) damaged: pg deep-scrub $pg found and repaired it"
fsck_osd "$r1"

# 3b. fsck and scrub find the same fault: a replica's copy damaged while
# its OSD is stopped is named by fsck, then found by a light scrub.
put 200:6
read -r p r1 r2 <<<"$(acting 200:6)"
pg=$(pgid 200:6)
sleep 1 # checkpointed (see 1.)
osd_kill "$r2"
"$flip" "$dir/osd.$r2.img" "$dir/200:6" >/dev/null || fail "flip on osd.$r2"
"$build/basalt-osd" --fsck --device "$dir/osd.$r2.img" >"$dir/fsck" 2>&1 &&
	fail "fsck calls osd.$r2's damaged store clean"
grep -q "checksum mismatch in block [0-9]* chunk 1 (object 1:200:6" "$dir/fsck" ||
	fail "fsck did not name 200:6: $(cat "$dir/fsck")"
osd_start "$r2"
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.$r2 back"
cli pg scrub "$pg" --wait >/dev/null || fail "scrub of pg $pg"
grep -q "pg $pg scrub: the copy of 1:200:6 on osd.$r2 fails its checksums: repairing it" \
	"$dir/osd.$p.log" || fail "the light scrub did not find what fsck found"
wait_for "s['pgs'].get('active+clean')==8" 30 "pg $pg clean after its repair"
echo "3b. fsck named the damaged copy of 200:6 on the stopped osd.$r2; a light scrub found the same and repaired it"
fsck_osd "$r2"

# 4. Two of three copies.
put 200:3
read -r p r1 r2 <<<"$(acting 200:3)"
pg=$(pgid 200:3)
"$flip" "$dir/osd.$p.img" "$dir/200:3" >/dev/null || fail "flip on osd.$p"
"$flip" "$dir/osd.$r1.img" "$dir/200:3" >/dev/null || fail "flip on osd.$r1"
get 200:3 || fail "reading 200:3 with two copies damaged: $(cat "$dir/get.err")"
cli pg deep-scrub "$pg" --wait >/dev/null || fail "deep scrub of pg $pg"
wait_for "s['pgs'].get('active+clean')==8" 30 "pg $pg clean"
echo "4. two of three copies damaged: the third served, both repaired"
fsck_osd "$p"
fsck_osd "$r1"

# 5. Every copy.
put 200:4
pg=$(pgid 200:4)
for o in $(acting 200:4); do "$flip" "$dir/osd.$o.img" "$dir/200:4" >/dev/null || fail "flip on osd.$o"; done
get 200:4 && fail "200:4 read back with every copy damaged"
grep -q "Input/output error\|I/O error" "$dir/get.err" || fail "reading a lost object said: $(cat "$dir/get.err")"
wait_for "'no good copy left' in s['health'] and '200:4' in s['health']" 20 "health naming 200:4"
js "s['health']"
cli pg ls rbd --inconsistent >"$dir/inc"
grep -q "no good copy left: object 200:4" "$dir/inc" || fail "pg ls --inconsistent: $(cat "$dir/inc")"
cli object rm rbd 200:4 >/dev/null || fail "deleting the lost object"
wait_for "'no good copy left' not in s['health']" 20 "health after the delete"
echo "5. every copy damaged: reads fail (never wrong bytes), health and pg ls --inconsistent name it; it can be deleted"

# 6. An unreadable range under the primary's copy.
# (An object whose bytes sit in one place only: a copy written twice
# leaves them in a freed block too, and the range must cover the live one.)
for try in 1 2 3; do
	put 200:5
	read -r p r1 r2 <<<"$(acting 200:5)"
	off=$("$flip" "$dir/osd.$p.img" "$dir/200:5" --find) || fail "finding 200:5 on osd.$p"
	[ "$(echo "$off" | wc -l)" = 1 ] && break
done
[ "$(echo "$off" | wc -l)" = 1 ] || fail "200:5 is in more than one place on osd.$p"
osd_kill "$p"
printf '[osd.%s]\nosd_debug_bad_range = %s+4096\n' "$p" "$((off + 8192))" >>"$dir/basalt.conf"
osd_start "$p"
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.$p back"
get 200:5 || fail "reading 200:5 over an unreadable range: $(cat "$dir/get.err")"
grep -q "read error: object 1:200:5" "$dir/osd.$p.log" || fail "osd.$p did not log the read error"
# The range stays unreadable (a real disk remaps a sector once written):
# it goes with the setting.
osd_kill "$p"
sed -i '/^osd_debug_bad_range = /d' "$dir/basalt.conf"
osd_start "$p"
wait_for "s['osd']['up']==3 and s['pgs'].get('active+clean')==8" 60 "osd.$p back"
echo "6. an unreadable range under osd.$p's copy: read as a bad copy, repaired"

# 7. Through basalt-nbd.
cli volume create vm --size 16M >/dev/null
nbd_start
head -c 4M /dev/urandom >"$dir/vmdata"
qemu-img convert -n -f raw -O raw "$dir/vmdata" "$uri/vm" || fail "writing the volume"
inode=$(cli --json volume info vm | python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)["inode"])')
cli object get rbd "$inode:1" "$dir/vmobj" >/dev/null || fail "object 1 of the volume"
read -r p r1 r2 <<<"$(acting "$inode:1")"
"$flip" "$dir/osd.$p.img" "$dir/vmobj" >/dev/null || fail "flip on osd.$p"
qemu-img compare -f raw -F raw "$dir/vmdata" "$uri/vm" >"$dir/qio" 2>&1 ||
	fail "reading the volume through basalt-nbd: $(cat "$dir/qio")"
grep -q "the copy of 1:$inode:1 on osd.$p is bad" "$dir/osd.$p.log" ||
	fail "osd.$p did not say it repaired the volume's block"
echo "7. a volume's block damaged on osd.$p: qemu-img through basalt-nbd read the right bytes"
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs clean"
js "s['health']"

# 8. Scrubs beside a verifying writer: fio through basalt-nbd writes and
# reads back (crc32c) while every OSD deep-scrubs every PG it leads, over
# and over. No I/O or verify error, and no copy called bad: a scrub must
# never mistake a write in flight for damage.
cli volume create load --size 64M >/dev/null
# (From the OSDs' logs: the counters in pg ls lag a beacon behind.)
bad_total() { cat "$dir"/osd.*.log | grep -c "scrub: the copy of\|is bad: " || true; }
scrubs_done() { cat "$dir"/osd.*.log | grep -c "deep scrub done" || true; }
bad0=$(bad_total) done0=$(scrubs_done)
fio --output-format=json --output="$dir/fio.json" --ioengine=nbd --uri="$uri/load" \
	--rw=randwrite --verify=crc32c --verify_fatal=1 --verify_backlog=256 \
	--verify_state_save=0 --time_based --runtime=15 \
	--name=small --bs=4k --iodepth=16 --offset=0 --size=32m \
	--name=large --bs=128k --iodepth=4 --offset=32m --size=32m \
	>"$dir/fio.err" 2>&1 &
fio_pid=$!
while kill -0 "$fio_pid" 2>/dev/null; do
	for i in 0 1 2; do cli osd scrub "$i" --deep >/dev/null; done
	sleep 1
done
wait "$fio_pid" || fail "fio failed beside scrubs: $(tail -20 "$dir/fio.err")"
fio_verified "$dir/fio.json" | sed "s/^/   /" || fail "fio: $(cat "$dir/fio.err")"
scrubbed=$(($(scrubs_done) - done0))
[ "$scrubbed" -ge 8 ] || fail "only $scrubbed deep scrubs of PGs finished beside fio"
[ "$(bad_total)" = "$bad0" ] ||
	fail "scrubs beside writes called copies bad: $(grep -h "scrub: the copy\|is bad: " "$dir"/osd.*.log | tail -5)"
echo "8. fio verify=crc32c through basalt-nbd beside $scrubbed deep scrubs of PGs: no error, no copy called bad"
echo PASS
