#!/usr/bin/env bash
# Builds, once, the small guest that vm_enospc.sh boots under qemu: Debian's
# own kernel taken out of its .deb (never installed: nothing goes to /boot),
# and a gzipped cpio initramfs of busybox-static, the virtio modules with
# their dependencies, guest/init and a 4 MiB random pattern for it to write.
#   guest/build.sh CACHE_DIR
# Prints the directory holding vmlinuz, initrd.gz and pattern.sha256:
# CACHE_DIR/KERNEL_VERSION-HASH, HASH covering this script and init, so an
# edit to either builds anew and a warm cache costs nothing. Needs apt-get
# (an `apt-get update` is run only when the kernel's .deb cannot be found),
# busybox-static and cpio.
set -euo pipefail
cache=${1:?usage: build.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
modules=(virtio_pci virtio_blk) # what the guest needs to see -drive if=virtio

# The versioned package that linux-image-amd64 depends on, e.g.
# linux-image-6.1.0-57-amd64.
kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg=$(kernel_package)
if [ -z "$pkg" ]; then
	apt-get update -qq >&2
	pkg=$(kernel_package)
fi
[ -n "$pkg" ] || { echo "build.sh: apt knows no linux-image-amd64" >&2; exit 1; }
kver=${pkg#linux-image-}
key=$kver-$(cat "$0" "$here/init" | sha256sum | cut -c1-12)
out=$cache/$key
[ -e "$out/ok" ] && { echo "$out"; exit 0; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one build at a time; the second finds the first one's result
[ -e "$out/ok" ] && { echo "$out"; exit 0; }

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
if ! (cd "$work" && apt-get download "$pkg") >"$work/apt.log" 2>&1; then
	# Stale lists name a kernel the mirror no longer has: update, and
	# start again from the version the new lists name.
	[ -z "${BUILD_SH_UPDATED:-}" ] || { cat "$work/apt.log" >&2; exit 1; }
	rm -rf "$work"
	apt-get update -qq >&2
	BUILD_SH_UPDATED=1 exec "$0" "$@"
fi
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kdir=$work/kernel/lib/modules/$kver
[ -d "$kdir" ] || { echo "build.sh: $pkg has no lib/modules/$kver" >&2; exit 1; }

# Modules in load order, dependencies first. The package carries no
# modules.dep (depmod makes it on install) and kmod may be absent, so the
# dependencies come from each module's own .modinfo "depends=" string.
root=$work/root
mkdir -p "$root/bin" "$root/lib/modules" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"
declare -A loaded
order=()
add_module() {
	local name=$1 file dep deps
	[ -n "${loaded[$name]:-}" ] && return 0
	loaded[$name]=1
	file=$(find "$kdir/kernel" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) | head -n 1)
	[ -n "$file" ] || { echo "build.sh: no module $name in $pkg" >&2; exit 1; }
	deps=$(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | head -n 1)
	for dep in ${deps//,/ }; do add_module "$dep"; done
	cp "$file" "$root/lib/modules/$name.ko"
	order+=("$name")
}
for m in "${modules[@]}"; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$root/modules"

cp /bin/busybox "$root/bin/busybox"
! ldd /bin/busybox >/dev/null 2>&1 ||
	{ echo "build.sh: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }
install -m 755 "$here/init" "$root/init"
head -c 4M /dev/urandom >"$root/pattern"

mkdir -p "$work/out"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/out/vmlinuz"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/out/initrd.gz"
sha256sum <"$root/pattern" | cut -d' ' -f1 >"$work/out/pattern.sha256"
echo "$pkg: modules ${order[*]}; built in $(($(date +%s) - started)) s" >"$work/out/ok"
rm -rf "$out"
mv "$work/out" "$out"
echo "$out"
