#!/usr/bin/env bash
# The Debian package: built by CPack, lintian reports no error, and
# installed with dpkg into a throwaway root it puts every file where the
# units expect it — each unit's program (running --version from there),
# the man pages the units name, the conffiles, the tmpfiles.d entry (which
# makes /run/docker/plugins) — ships no test or bench program, and
# `systemd-analyze verify` accepts every installed unit (and refuses one
# whose program is missing: the check is real).
#   package.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: package.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/basalt-package.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
root=$dir/root

. "$(dirname "$0")/package_lib.sh"
package_build

# --- lintian: no errors (warnings are listed) ---------------------------------
lintian --fail-on error "$deb" >"$dir/lintian.log" 2>&1 || true
grep -v '^running with root privileges' "$dir/lintian.log" || true
grep -q '^E: ' "$dir/lintian.log" && fail "lintian reports errors"

# --- dpkg into a throwaway root -----------------------------------------------
# An empty dpkg database; maintainer scripts run outside the root (there is
# no shell in it) with DPKG_ROOT set, so they touch nothing.
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
dpkg --root="$root" --log=/dev/null --force-depends --force-script-chrootless -i "$deb" \
	>"$dir/dpkg.log" 2>&1 || fail "dpkg -i into $root: $(cat "$dir/dpkg.log")"
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Status} ${Version}' basalt)
[ "$status" = "installed $version" ] || fail "dpkg says basalt is '$status'"

# Every unit's programs are there and run from the root.
units=$(cd "$root/lib/systemd/system" && ls basalt*)
programs=
for u in $units; do
	for p in $(sed -n 's/^Exec[A-Za-z]*=-\?\([^ ]*\).*/\1/p' "$root/lib/systemd/system/$u"); do
		[ -x "$root$p" ] || fail "$u runs $p, which the package does not install"
		out=$("$root$p" --version) || fail "$root$p --version failed"
		[ "$out" = "$(basename "$p") $version" ] || fail "$root$p --version says '$out', not $version"
		programs="$programs $(basename "$p")"
	done
done
# What /usr/bin holds: those programs and the basalt command, nothing else.
want=$(echo basalt $programs | tr ' ' '\n' | sort -u | tr '\n' ' ')
have=$(ls "$root/usr/bin" | sort | tr '\n' ' ')
[ "$have" = "$want" ] || fail "/usr/bin holds '$have', expected '$want' (no tests or benches)"
[ -z "$(dpkg --root="$root" -L basalt | grep -E 'test|bench|fuzz' || true)" ] ||
	fail "test or bench files packaged: $(dpkg --root="$root" -L basalt | grep -E 'test|bench|fuzz')"

# A man page per program, rendered with its name.
for p in $want; do
	page=$root/usr/share/man/man8/$p.8.gz
	[ -f "$page" ] || fail "no man page for $p"
	MANWIDTH=80 man -l "$page" >"$dir/man.txt" 2>/dev/null || fail "man cannot render $page"
	grep -q "^ *$p - " "$dir/man.txt" || fail "$page has no NAME line for $p"
done

# Conffiles: what dpkg knows as such is everything under /etc, and there.
conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}' basalt |
	awk 'NF {print $1}' | sort | tr '\n' ' ')
in_etc=$(cd "$root" && find etc -type f | sed 's|^|/|' | sort | tr '\n' ' ')
[ "$conffiles" = "$in_etc" ] || fail "conffiles '$conffiles' but /etc holds '$in_etc'"
[ "$conffiles" = "/etc/basalt/README /etc/basalt/basalt.conf.example " ] ||
	fail "unexpected conffiles: $conffiles"
[ ! -e "$root/etc/basalt/basalt.conf" ] && [ ! -e "$root/etc/basalt/keyring" ] ||
	fail "the package installs a live config or keyring"
grep -q "^\[mon.a\]" "$root/etc/basalt/basalt.conf.example" || fail "the example config has no monitor"
[ -d "$root/var/lib/basalt" ] || fail "no /var/lib/basalt"
for f in copyright changelog.gz README.md; do
	[ -f "$root/usr/share/doc/basalt/$f" ] || fail "no /usr/share/doc/basalt/$f"
done

# The tmpfiles.d entry makes the runtime directories (the Docker plugin's
# socket directory among them) in the root, as it does at boot.
systemd-tmpfiles --root="$root" --create basalt.conf || fail "systemd-tmpfiles refused basalt.conf"
for d in /run/docker/plugins /run/basalt; do
	[ -d "$root$d" ] || fail "tmpfiles.d/basalt.conf did not make $d"
done
echo "installed: ${want% }; $(echo $units | wc -w) units, man pages, conffiles, tmpfiles"

# --- systemd-analyze verify on the installed units ----------------------------
# It loads the units from the root (the host's own units beside them, for
# the targets they name), checks that each ExecStart program exists there,
# and with MANPATH in the root that each man: documentation page does.
mkdir -p "$root/usr/lib/systemd/system"
(cd /usr/lib/systemd/system && find . -maxdepth 1 ! -name 'basalt*' ! -name . \
	-exec cp -a {} "$root/usr/lib/systemd/system/" \;)
instances=
for u in $units; do
	case $u in
	basalt-fuse@.service) instances="$instances basalt-fuse@$(systemd-escape --path /mnt/basalt).service" ;;
	*@.service) instances="$instances ${u%@.service}@0.service" ;;
	*) instances="$instances $u" ;;
	esac
done
MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" $instances >"$dir/verify.log" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$dir/verify.log")"
[ ! -s "$dir/verify.log" ] || fail "systemd-analyze verify complains: $(cat "$dir/verify.log")"
echo "systemd-analyze verify:$instances"

# The same check refuses a unit whose program is missing.
mv "$root/usr/bin/basalt-nbd" "$dir/"
MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" basalt-nbd.service \
	>"$dir/verify.log" 2>&1 && fail "systemd-analyze verify accepts a unit without its program"
grep -q "/usr/bin/basalt-nbd is not executable" "$dir/verify.log" ||
	fail "systemd-analyze verify failed otherwise: $(cat "$dir/verify.log")"
echo "PASS"
