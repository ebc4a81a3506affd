#!/usr/bin/env python3
"""nbd_table.py DIR ROW...: the Markdown table of bench/nbd.sh.

Each ROW is "name fio-rw bs qd"; DIR holds fio-NAME.json (fio on the raw
file), nbd-NAME.json (fio's nbd engine against basalt-nbd) and
cpu-NAME.json (CPU seconds of basalt-nbd and the daemons during the nbd
run). The CPU counts the ramp second too, so it divides by the I/Os of
the whole run (ramp included) estimated from the measured rate."""
import json
import sys


def side(path, rw):
    with open(path) as f:
        j = json.load(f)["jobs"][0]
    s = j["write" if "write" in rw else "read"]
    mean = s["clat_ns"]["mean"] / 1000
    p99 = s["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
    if "write" in rw and j.get("sync", {}).get("lat_ns", {}).get("mean"):
        # fdatasync=1: the sync is part of the write
        mean += j["sync"]["lat_ns"]["mean"] / 1000
        p99 += j["sync"]["lat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
    return s["iops"], s["bw_bytes"] / 1e6, mean, p99, j["job_runtime"] / 1000


def main():
    out, rows = sys.argv[1], sys.argv[2:]
    print("| job | QD | system | IOPS | MB/s | mean µs | p99 µs | CPU µs/op (basalt-nbd + daemons) "
          "| Basalt/fio IOPS |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name, rw, bs, qd = r.split()
        job = f"{bs} {'rand ' if rw.startswith('rand') else 'seq '}{rw.replace('rand', '')}"
        fio = side(f"{out}/fio-{name}.json", rw)
        nbd = side(f"{out}/nbd-{name}.json", rw)
        with open(f"{out}/cpu-{name}.json") as f:
            cpu_s = json.load(f)["cpu_s"]
        ops = nbd[0] * (nbd[4] + 1)  # the ramp second ran at about the same rate
        sync = " (fdatasync)" if "write" in rw else ""
        print(f"| {job} | {qd} | fio io_uring, raw file{sync} | {fio[0]:.0f} | {fio[1]:.1f} "
              f"| {fio[2]:.1f} | {fio[3]:.1f} | | |")
        ratio = nbd[0] / fio[0] if fio[0] else 0
        print(f"| {job} | {qd} | fio nbd, basalt-nbd, 3 copies | {nbd[0]:.0f} | {nbd[1]:.1f} "
              f"| {nbd[2]:.1f} | {nbd[3]:.1f} | {cpu_s * 1e6 / ops if ops else 0:.0f} "
              f"| {ratio:.2f} |")


if __name__ == "__main__":
    main()
