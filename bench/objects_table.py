#!/usr/bin/env python3
"""objects_table.py DIR ROW...: the Markdown table of bench/objects.sh.

Each ROW is "op bs qd fio-rw"; DIR holds fio-OP-BS-qdQD.json (fio's JSON)
and basalt-OP-BS-qdQD.json (one line from bench/objects)."""
import json
import sys


def fio_row(path, op):
    with open(path) as f:
        j = json.load(f)["jobs"][0]
    side = j["write" if op == "write" else "read"]
    iops = side["iops"]
    mean = side["clat_ns"]["mean"] / 1000
    pcts = side["clat_ns"].get("percentile", {})
    p99 = pcts.get("99.000000", 0) / 1000
    if op == "write" and "sync" in j:  # fdatasync=1: the sync is part of the write
        mean += j["sync"]["lat_ns"]["mean"] / 1000
        p99 += j["sync"]["lat_ns"].get("percentile", {}).get("99.000000", 0) / 1000
    return iops, side["bw_bytes"] / 1e6, mean, p99


def main():
    out, rows = sys.argv[1], sys.argv[2:]
    print("| job | QD | system | IOPS | MB/s | mean µs | p99 µs | CPU µs/op (client + daemons) "
          "| Basalt/fio IOPS |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        op, bs, qd, _ = r.split()
        name = f"{int(bs) // 1024}k {'rand ' if bs == '4096' else ''}{op}"
        fio = fio_row(f"{out}/fio-{op}-{bs}-qd{qd}.json", op)
        with open(f"{out}/basalt-{op}-{bs}-qd{qd}.json") as f:
            b = json.load(f)
        sync = " (fdatasync)" if op == "write" else ""
        print(f"| {name} | {qd} | fio{sync} | {fio[0]:.0f} | {fio[1]:.1f} | {fio[2]:.1f} "
              f"| {fio[3]:.1f} | | |")
        cpu = b["client_cpu_us_per_op"] + b["daemons_cpu_us_per_op"]
        ratio = b["iops"] / fio[0] if fio[0] else 0
        print(f"| {name} | {qd} | Basalt, 3 copies | {b['iops']:.0f} | {b['mb_s']:.1f} "
              f"| {b['mean_us']:.1f} | {b['p99_us']:.1f} | {cpu:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
