#!/usr/bin/env bash
# Installs what Basalt's build and test suite need on Debian 12, as root,
# and the packages named as arguments; with --only, just those (what
# bench/ceph.sh needs for Ceph).
# Idempotent: when every package is present it prints nothing and changes nothing.
#   scripts/install-deps.sh [--only] [PACKAGE...]
set -euo pipefail

if [ "${1:-}" = --only ]; then
	shift
	[ $# -gt 0 ] || { echo "install-deps: --only takes package names" >&2; exit 2; }
	packages=("$@")
else

packages=(
	# build
	build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
	# libraries
	liburing-dev libisal-dev libssl-dev libfuse3-dev libcmocka-dev
	libinih-dev libcurl4-openssl-dev libjansson-dev libxml2-dev libzstd-dev libmicrohttpd-dev
	libsystemd-dev libblkid-dev
	# test tools (NBD clients: qemu-img/qemu-io; nbdinfo, nbdcopy and nbdfuse are in libnbd-bin)
	python3 python3-libnbd iproute2 procps util-linux fio qemu-utils libnbd-bin fuse3
	e2fsprogs
	# metrics test: a real Prometheus server and promtool
	prometheus
	# basalt-docker's tests: mkfs.xfs, a real Docker engine
	xfsprogs docker.io
	# TLS tests: certificates (tls_certs.sh), loopback captures (nbd_tls.sh)
	openssl tcpdump
	# S3 for backup tests: a real radosgw over a one-OSD Ceph cluster, awscli to cross-check
	radosgw ceph-mon ceph-osd ceph-common awscli uuid-runtime curl
	# vm_enospc's guest (qemu under TCG; the kernel is downloaded by the test, never installed)
	qemu-system-x86 busybox-static cpio
	# bench plots
	gnuplot-nox
	# the Debian package (package.sh): man pages from --help, its checks, systemd-analyze verify
	help2man lintian man-db systemd
	"$@"
)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
