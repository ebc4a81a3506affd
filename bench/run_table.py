#!/usr/bin/env python3
"""run_table.py DIR: the Markdown table and results.json of bench/run.sh.

DIR/rows has one line per fio run: JOB TARGET FIO_JSON CPU_SECONDS (the
CPU of every process of that system during the run, ramp included)."""
import json
import sys

from nbd_table import side

LABELS = {
    "device": "device (raw file, io_uring direct)",
    "device-fdatasync": "device + fdatasync",
    "basalt-nbd": "Basalt, basalt-nbd",
    "ceph-rbd": "Ceph, librbd",
    "ceph-nbd": "Ceph, qemu-nbd",
}


def main():
    out = sys.argv[1]
    rows = {}
    order = []
    ramp = float(open(f"{out}/ramp").read())
    for line in open(f"{out}/rows"):
        job, target, path, cpu = line.split()
        rw = job.split("-")[1]
        iops, mbs, mean, p99, runtime_s = side(f"{out}/{path}", rw)
        ops = iops * (runtime_s + ramp)  # the ramp ran at about the same rate
        cpu_us = float(cpu) * 1e6 / ops if ops and target not in ("device", "device-fdatasync") else None
        rows[(job, target)] = {"job": job, "system": target, "iops": iops, "mb_s": mbs,
                               "mean_us": mean, "p99_us": p99, "cpu_us_per_io": cpu_us}
        if job not in order:
            order.append(job)
    print("| job | system | IOPS | MB/s | mean µs | p99 µs | CPU µs/IO | Basalt ÷ this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for job in order:
        basalt = rows.get((job, "basalt-nbd"))
        for target in LABELS:
            r = rows.get((job, target))
            if not r:
                continue
            ratio = ""
            if basalt and target != "basalt-nbd" and r["iops"]:
                ratio = f"{basalt['iops'] / r['iops']:.2f}"
            cpu = f"{r['cpu_us_per_io']:.0f}" if r["cpu_us_per_io"] is not None else ""
            print(f"| {job} | {LABELS[target]} | {r['iops']:.0f} | {r['mb_s']:.1f} "
                  f"| {r['mean_us']:.0f} | {r['p99_us']:.0f} | {cpu} | {ratio} |")
    with open(f"{out}/results.json", "w") as f:
        json.dump(list(rows.values()), f, indent=1)


if __name__ == "__main__":
    main()
