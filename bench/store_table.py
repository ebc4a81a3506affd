#!/usr/bin/env python3
"""Markdown table of a bench/store.sh run: fio and the Basalt store, job by
job, with ratios. fio's latency for fdatasync=1 rows is the write's plus the
fdatasync's (the time until the data is durable), since fio reports them
apart; Basalt acknowledges only when durable in osd_sync=always.

usage: store_table.py RESULTS_DIR "JOB QD BS FIO_RW" ..."""
import json
import sys


def fio(out, rw, bs, qd, sync):
    d = json.load(open(f"{out}/fio-{rw}-{bs}-qd{qd}-sync{sync}.json"))["jobs"][0]
    side = d["write"] if "write" in rw else d["read"]
    mean = side["lat_ns"]["mean"]
    p99 = side["clat_ns"].get("percentile", {}).get("99.000000", 0)
    if sync and d.get("sync", {}).get("lat_ns", {}).get("mean"):
        mean += d["sync"]["lat_ns"]["mean"]
        p99 += d["sync"]["lat_ns"].get("percentile", {}).get("99.000000", 0)
    return side["iops"], side["bw_bytes"] / 1e6, mean / 1e3, p99 / 1e3


def basalt(out, job, bs, qd, sync):
    lines = open(f"{out}/basalt-{job}-{bs}-qd{qd}-{sync}.json").read().splitlines()
    d = json.loads(lines[-1])
    return d["iops"], d["mbps"], d["mean_us"], d["p99_us"]


def main():
    out = sys.argv[1]
    jobs = [j.split() for j in sys.argv[2:]]
    print("| job | QD | sync | system | IOPS | MB/s | mean µs | p99 µs | Basalt/fio IOPS | Basalt/fio mean latency |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for job, qd, bs, rw in jobs:
        kind = "rand" if "rand" in job else "seq"
        op = "write" if "write" in job else "read"
        name = f"{bs} {kind} {op}"
        for sync, fsync in (("always", 1), ("batch", 0)):
            f = fio(out, rw, bs, qd, fsync)
            b = basalt(out, job, bs, qd, sync)
            label = "fdatasync=1" if fsync else "none"
            print(f"| {name} | {qd} | {label} | fio | {f[0]:.0f} | {f[1]:.1f} | {f[2]:.1f} | {f[3]:.1f} | | |")
            print(f"| {name} | {qd} | osd_sync={sync} | Basalt store | {b[0]:.0f} | {b[1]:.1f} | {b[2]:.1f} | {b[3]:.1f} "
                  f"| {b[0] / f[0]:.2f} | {b[2] / f[2]:.2f} |")


if __name__ == "__main__":
    main()
