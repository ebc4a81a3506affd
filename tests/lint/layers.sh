#!/usr/bin/env bash
# The include layering holds on the tree (scripts/check_layers.py), and the
# check does fail: a copy of the tree with a monitor file that includes an
# OSD header, and a shared-layer file that includes the client library's,
# is refused with both offences named.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
check="$src/scripts/check_layers.py"

python3 "$check" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in common common/io common/cluster mon osd client client/backup client/cli client/nbd fuse; do
	mkdir -p "$tmp/$d"
	cp "$src/$d"/*.[ch] "$tmp/$d/"; cp "$src/$d"/*.in "$tmp/$d/" 2>/dev/null || true
done
python3 "$check" "$tmp" # the copy passes as it is
sed -i '0,/#include "mon.h"/s//#include "mon.h"\n#include "osd\/osd.h"/' "$tmp/mon/mon.c"
sed -i '0,/#include "monsess.h"/s//#include "monsess.h"\n#include "client\/libbasalt.h"/' \
	"$tmp/common/cluster/monsess.c"
rc=0
out=$(python3 "$check" "$tmp" 2>&1) || rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "FAIL: check_layers passed a tree with wrong includes" >&2; exit 1; }
grep -q 'mon/mon.c:[0-9]*: includes osd/osd.h, a header of osd/ (layer 2), beside it mon/' <<<"$out" ||
	{ echo "FAIL: mon including osd not named" >&2; exit 1; }
grep -q 'common/cluster/monsess.c:[0-9]*: includes client/libbasalt.h, a header of client/ (layer 2), above it' <<<"$out" ||
	{ echo "FAIL: shared layer including the client library not named" >&2; exit 1; }
echo "layers: PASS"
