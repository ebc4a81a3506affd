#!/bin/bash
# The boot side of systemd_units.sh, run by it as PID 1 of new mount, PID
# and UTS namespaces: moves itself into the test's cgroups, enters a cgroup
# namespace rooted there (so this systemd sees and manages those cgroups
# only), builds a root that is this machine's / under a tmpfs overlay
# (nothing written reaches the real /), and boots systemd in it to the
# empty target basalt-test.target.
#   systemd_boot.sh STAGE DIR CGROUP
set -euo pipefail
stage=$1 dir=$2 cg=$3
m=$dir/merged
if [ "$stage" = enter ]; then
	if [ -d "/sys/fs/cgroup/unified/$cg" ]; then
		echo 0 >"/sys/fs/cgroup/systemd/$cg/cgroup.procs"
		echo 0 >"/sys/fs/cgroup/unified/$cg/cgroup.procs"
	else
		echo 0 >"/sys/fs/cgroup/$cg/cgroup.procs"
	fi
	exec unshare --cgroup "$0" boot "$dir" "$cg"
fi
hybrid=0
if [ -d /sys/fs/cgroup/unified ]; then hybrid=1; fi
mount --make-rprivate /
mkdir -p "$dir/rw" "$m"
mount -t tmpfs tmpfs "$dir/rw"
mkdir "$dir/rw/upper" "$dir/rw/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/rw/upper,workdir=$dir/rw/work" "$m"
mount -t proc proc "$m/proc"
mount --rbind /dev "$m/dev"
mount --rbind /sys "$m/sys"
# cgroupfs mounted in the cgroup namespace: its root is the test's cgroup.
if [ "$hybrid" = 1 ]; then
	mount -t tmpfs -o mode=755 tmpfs "$m/sys/fs/cgroup"
	mkdir "$m/sys/fs/cgroup/systemd" "$m/sys/fs/cgroup/unified"
	mount -t cgroup -o none,name=systemd cgroup "$m/sys/fs/cgroup/systemd"
	mount -t cgroup2 cgroup2 "$m/sys/fs/cgroup/unified"
else
	mount -t cgroup2 cgroup2 "$m/sys/fs/cgroup"
fi
mount -t tmpfs -o mode=755 tmpfs "$m/run"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
mkdir -p "$m/etc/systemd/system"
printf '[Unit]\nDescription=Basalt systemd test (nothing else started)\n' \
	>"$m/etc/systemd/system/basalt-test.target"
export container=basalt-test
exec chroot "$m" /lib/systemd/systemd --system --unit=basalt-test.target --show-status=no \
	--log-target=console
