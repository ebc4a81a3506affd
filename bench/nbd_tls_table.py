#!/usr/bin/env python3
"""nbd_tls_table.py DIR ROW...: the Markdown table of bench/nbd_tls.sh.

Each ROW is "name fio-rw bs qd"; DIR holds plain-NAME.json and
tls-NAME.json (fio's nbd engine against one basalt-nbd, nbd:// and
nbds://) and cpu-plain-NAME.json, cpu-tls-NAME.json (CPU seconds of
basalt-nbd alone and of basalt-nbd with the daemons). As in nbd_table.py
the CPU covers the ramp second too, so it divides by the I/Os of the whole
run estimated from the measured rate."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbd_table import side  # noqa: E402


def main():
    out, rows = sys.argv[1], sys.argv[2:]
    print("| job | QD | NBD | IOPS | MB/s | mean µs | p99 µs | basalt-nbd CPU µs/op "
          "| all processes CPU µs/op | TLS/plain IOPS |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name, rw, bs, qd = r.split()
        job = f"{bs} {'rand ' if rw.startswith('rand') else 'seq '}{rw.replace('rand', '')}"
        iops = {}
        for which in ("plain", "tls"):
            s = side(f"{out}/{which}-{name}.json", rw)
            with open(f"{out}/cpu-{which}-{name}.json") as f:
                cpu = json.load(f)
            ops = s[0] * (s[4] + 1)  # the ramp second ran at about the same rate
            iops[which] = s[0]
            ratio = f"{iops['tls'] / iops['plain']:.2f}" if which == "tls" and iops["plain"] else ""
            per = [cpu[k] * 1e6 / ops if ops else 0 for k in ("nbd_cpu_s", "cpu_s")]
            label = "TLS 1.3 (X.509, AES-128-GCM)" if which == "tls" else "plain"
            print(f"| {job} | {qd} | {label} | {s[0]:.0f} | {s[1]:.1f} | {s[2]:.1f} | {s[3]:.1f} "
                  f"| {per[0]:.1f} | {per[1]:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
