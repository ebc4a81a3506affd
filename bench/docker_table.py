#!/usr/bin/env python3
"""docker_table.py DIR ROW...: the Markdown table of bench/docker.sh.

Each ROW is "name fio-rw bs qd"; DIR holds direct-NAME-R.json,
hostdio-NAME-R.json and container-NAME-R.json for rounds R = 1, 2."""
import sys

from nbd_table import side


def main():
    out, rows = sys.argv[1], sys.argv[2:]
    print("| job | QD | path | IOPS (round 1, 2) | MB/s (round 1, 2) | mean µs (round 1, 2) "
          "| IOPS / host, loop with direct I/O |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        name, rw, bs, qd = r.split()
        job = f"{bs} {'rand ' if rw.startswith('rand') else 'seq '}{rw.replace('rand', '')}"
        figures = {}
        for path in ("direct", "hostdio", "container"):
            figures[path] = [side(f"{out}/{path}-{name}-{n}.json", rw) for n in (1, 2)]
        mean_iops = {p: sum(s[0] for s in f) / 2 for p, f in figures.items()}
        for path, label in (("direct", "host: basalt-fuse, `mount -o loop`, ext4"),
                            ("hostdio", "host: basalt-fuse, loop with direct I/O, ext4"),
                            ("container", "container on a basalt-docker mount")):
            f = figures[path]
            ratio = (f"{mean_iops[path] / mean_iops['hostdio']:.2f}"
                     if path != "hostdio" and mean_iops["hostdio"] else "")
            print(f"| {job} | {qd} | {label} | {f[0][0]:.0f}, {f[1][0]:.0f} "
                  f"| {f[0][1]:.1f}, {f[1][1]:.1f} | {f[0][2]:.0f}, {f[1][2]:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
