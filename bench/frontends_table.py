#!/usr/bin/env python3
"""frontends_table.py DIR ROW...: the Markdown table of bench/frontends.sh.

Each ROW is "name fio-rw bs qd"; DIR holds fio-NAME.json (the raw file),
nbd-NAME.json and fuse-NAME.json (the two front ends) and
cpu-nbd-NAME.json, cpu-fuse-NAME.json (CPU seconds of the front end and
the daemons during that run, ramp second included)."""
import json
import sys

from nbd_table import side


def main():
    out, rows = sys.argv[1], sys.argv[2:]
    print("| job | QD | system | IOPS | MB/s | mean µs | p99 µs | CPU µs/op (front end + daemons) "
          "| IOPS / raw file |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name, rw, bs, qd = r.split()
        job = f"{bs} {'rand ' if rw.startswith('rand') else 'seq '}{rw.replace('rand', '')}"
        raw = side(f"{out}/fio-{name}.json", rw)
        sync = " (fdatasync)" if "write" in rw else ""
        print(f"| {job} | {qd} | raw file, fio io_uring{sync} | {raw[0]:.0f} | {raw[1]:.1f} "
              f"| {raw[2]:.1f} | {raw[3]:.1f} | | |")
        for fe, label in (("nbd", "basalt-nbd, fio nbd"), ("fuse", "basalt-fuse, fio io_uring")):
            s = side(f"{out}/{fe}-{name}.json", rw)
            with open(f"{out}/cpu-{fe}-{name}.json") as f:
                cpu_s = json.load(f)["cpu_s"]
            ops = s[0] * (s[4] + 1)  # the ramp second ran at about the same rate
            ratio = s[0] / raw[0] if raw[0] else 0
            print(f"| {job} | {qd} | {label}, 3 copies | {s[0]:.0f} | {s[1]:.1f} | {s[2]:.1f} "
                  f"| {s[3]:.1f} | {cpu_s * 1e6 / ops if ops else 0:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
