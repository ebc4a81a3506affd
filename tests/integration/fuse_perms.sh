#!/usr/bin/env bash
# basalt-fuse's owners and modes on a local cluster (3 monitors, 3 OSDs),
# checked as root and as users 65534 (nobody) and 65533:
#  - by default everything belongs to the mounting user: directories
#    0700, volume files 0600, snapshot files 0400; nobody cannot even stat
#    inside the mount (no allow_other);
#  - -o uid=65534,gid=65534,umask=027 gives 0750, 0640, 0440 owned by
#    65534:65534, and still keeps everyone else out without allow_other;
#  - -o allow_other,umask=066 lets nobody through the directories (0711)
#    but not into the 0600 root-owned volume (default_permissions: the
#    kernel checks the mode), nor list a directory;
#  - -o allow_other,uid=65534,gid=65534,umask=027: nobody reads its
#    volume and snapshot, 65533 (not in the group) cannot enter volumes/;
#  - refused, each with a message naming the option: umask=9z,
#    umask=1000, uid=abc, gid=4294967295, and allow_other for a user
#    other than root when /etc/fuse.conf lacks user_allow_other (a
#    private mount namespace puts test copies of fuse.conf in place).
#   fuse_perms.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: fuse_perms.sh BUILD_DIR}" && pwd)
dir=$(mktemp -d /tmp/basalt-fuseperms.XXXXXX)
. "$(dirname "$0")/cluster_lib.sh"
[ "$(id -u)" = 0 ] || fail "fuse_perms.sh runs as root (it switches to other users)"
# The mount points sit where other users can reach them ($dir is 0700).
pub=$(mktemp -d /tmp/basalt-fuseperms-pub.XXXXXX)
chmod 755 "$pub"
mD=$pub/default mU=$pub/owned mO=$pub/other mP=$pub/public
mkdir -p "$mD" "$mU" "$mO" "$mP" "$pub/nobody"
chown 65534:65534 "$pub/nobody"
cleanup() {
	for m in "$mD" "$mU" "$mO" "$mP"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
	done
	cluster_cleanup
	rm -rf "$dir" "$pub"
}
trap cleanup EXIT
for tool in fusermount3 setpriv unshare; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_other() { setpriv --reuid=65533 --regid=65533 --clear-groups "$@"; }
# modes MOUNT: "mode uid gid" of its root, volumes/, snapshots/, the volume
# file and the snapshot file, separated by " | ".
modes() {
	local m=$1
	stat -c '%a %u %g' "$m" "$m/volumes" "$m/snapshots" "$m/volumes/vm" "$m/snapshots/vm@s1" |
		paste -sd'|' | sed 's/|/ | /g'
}
expect_denied() { # expect_denied WHAT CMD...: CMD fails with EACCES
	local what=$1
	shift
	"$@" >/dev/null 2>"$dir/err" && fail "$what was allowed"
	grep -q "Permission denied" "$dir/err" || fail "$what: $(cat "$dir/err")"
}

cluster_up_local 256M
cli pool create rbd --size 3 --pg-num 8 >/dev/null
cli volume create vm --size 16M >/dev/null
wait_for "s['pgs'].get('active+clean')==8" 30 "PGs active+clean"
head -c 1M /dev/urandom >"$dir/data"

# --- the defaults: the mounting user's, 0700 / 0600 / 0400 ---
fuse_start fuseD "$mD"
dd if="$dir/data" of="$mD/volumes/vm" bs=1M conv=notrunc status=none || fail "root's write"
cli snap create vm@s1 >/dev/null
for _ in $(seq 50); do [ -e "$mD/snapshots/vm@s1" ] && break; sleep 0.1; done
want="700 0 0 | 700 0 0 | 700 0 0 | 600 0 0 | 400 0 0"
[ "$(modes "$mD")" = "$want" ] || fail "default modes: $(modes "$mD"), not $want"
expect_denied "nobody's stat without allow_other" as_nobody stat "$mD/volumes/vm"
expect_denied "nobody's ls without allow_other" as_nobody ls "$mD"
echo "defaults: $want; nobody cannot stat inside the mount"

# --- -o uid=,gid=,umask= ---
fuse_start fuseU "$mU" -o uid=65534,gid=65534,umask=027
want="750 65534 65534 | 750 65534 65534 | 750 65534 65534 | 640 65534 65534 | 440 65534 65534"
[ "$(modes "$mU")" = "$want" ] || fail "-o uid=65534,gid=65534,umask=027: $(modes "$mU"), not $want"
expect_denied "the owner's stat without allow_other" as_nobody stat "$mU/volumes/vm"
echo "-o uid=65534,gid=65534,umask=027: $want; without allow_other even the owner 65534 is kept out"

# --- -o allow_other: the kernel checks the modes ---
fuse_start fuseO "$mO" -o allow_other,umask=066
want="711 0 0 | 711 0 0 | 711 0 0 | 600 0 0 | 400 0 0"
[ "$(modes "$mO")" = "$want" ] || fail "-o allow_other,umask=066: $(modes "$mO"), not $want"
[ "$(as_nobody stat -c %s "$mO/volumes/vm")" = $((16 << 20)) ] ||
	fail "nobody cannot stat through 0711 directories"
expect_denied "nobody's read of a 0600 root-owned volume" as_nobody head -c 1 "$mO/volumes/vm"
expect_denied "nobody's write open of a 0600 root-owned volume" \
	as_nobody dd if=/dev/zero of="$mO/volumes/vm" bs=512 count=1 conv=notrunc status=none
expect_denied "nobody's read of a 0400 root-owned snapshot" as_nobody head -c 1 "$mO/snapshots/vm@s1"
expect_denied "nobody's listing of a 0711 directory" as_nobody ls "$mO/volumes"

fuse_start fuseP "$mP" -o allow_other,uid=65534,gid=65534,umask=027
as_nobody head -c $((1 << 20)) "$mP/volumes/vm" | cmp - "$dir/data" || fail "nobody's read of its volume"
as_nobody head -c $((1 << 20)) "$mP/snapshots/vm@s1" | cmp - "$dir/data" ||
	fail "nobody's read of its snapshot"
[ "$(as_nobody ls "$mP/volumes")" = vm ] || fail "nobody's listing of volumes/"
expect_denied "65533's stat in a 0750 directory of 65534" as_other stat "$mP/volumes/vm"
echo "allow_other: nobody passes 0711 but cannot read 0600 root files; it reads its own 0640 volume, 65533 cannot"

# --- refused options ---
refused() { # refused MESSAGE ARGS...: basalt-fuse ARGS exits 2 saying MESSAGE
	local want=$1 rc=0
	shift
	"$build/basalt-fuse" "$pub/nobody" -f -c "$dir/basalt.conf" "$@" 2>"$dir/err" || rc=$?
	[ "$rc" = 2 ] || fail "basalt-fuse $*: exit $rc ($(cat "$dir/err"))"
	grep -qF "basalt-fuse: $want" "$dir/err" || fail "basalt-fuse $*: $(cat "$dir/err")"
	! mountpoint -q "$pub/nobody" || fail "basalt-fuse $* mounted"
}
refused "-o umask takes an octal mode from 0 to 0777 (such as 027), not '9z'" -o umask=9z
refused "-o umask takes an octal mode from 0 to 0777 (such as 027), not '1000'" -o ro,umask=1000
refused "-o uid takes a whole number from 0 to 4294967294, not 'abc'" -o uid=abc
refused "-o gid must be from 0 to 4294967294, not 4294967295" -o gid=4294967295

# allow_other for nobody, with fuse.conf as given (a private mount
# namespace binds it over /etc/fuse.conf).
as_nobody_with_fuse_conf() { # CONF_TEXT ARGS...: basalt-fuse as nobody
	printf "$1" >"$dir/fuse.conf"
	shift
	unshare --mount --propagation private sh -c 'mount --bind "$1" /etc/fuse.conf && shift &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"' sh "$dir/fuse.conf" \
		"$build/basalt-fuse" "$pub/nobody" -f -c "$dir/basalt.conf" "$@"
}
no_allow="basalt-fuse: -o allow_other: users other than root may use it only when /etc/fuse.conf has a line 'user_allow_other' (see fuse(8))"
for conf in '# user_allow_other\n#mount_max = 1000\n' 'mount_max = 1000\nuser_allow_other'; do
	rc=0
	as_nobody_with_fuse_conf "$conf" -o allow_other 2>"$dir/err" || rc=$?
	[ "$rc" = 1 ] && grep -qF "$no_allow" "$dir/err" ||
		fail "allow_other for nobody with fuse.conf '$conf': exit $rc ($(cat "$dir/err"))"
done
# With the line, the refusal is not made: it goes on to the config
# (which nobody cannot read).
rc=0
as_nobody_with_fuse_conf '  user_allow_other  # yes\n' -o allow_other 2>"$dir/err" || rc=$?
[ "$rc" != 0 ] && ! grep -q allow_other "$dir/err" && grep -q "cannot open the config" "$dir/err" ||
	fail "allow_other for nobody with user_allow_other: exit $rc ($(cat "$dir/err"))"
echo "refused: umask=9z, umask=1000, uid=abc, gid=4294967295, allow_other for nobody without user_allow_other"

for p in fuseD fuseU fuseO fuseP; do
	kill -TERM "${pid[$p]}"
	wait "${pid[$p]}" || fail "$p exited non-zero on SIGTERM"
done
echo "PASS fuse_perms"
