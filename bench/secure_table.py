#!/usr/bin/env python3
"""secure_table.py DIR A B: the Markdown table of bench/secure.sh.

DIR/rows is bench/run.sh's format (read by run_table.read_rows), with the
targets nbd-A, nbd-B, native-A and native-B (A and B: crc and secure, or
before and after with --baseline): per job and client, A and B side by
side (means over the rounds) and B ÷ A, with each round's CPU ratio in
brackets to show the noise. For crc and secure, then the issue's goal:
secure costs at most 25% more CPU per 4 KiB write than crc."""
import sys

from run_table import read_rows

CLIENTS = {"nbd": "basalt-nbd", "native": "libbasalt"}
GOAL = 1.25


def ratio(a, b):
    return a / b if a and b else 0


def speed(r, job):
    return f"{r['iops']:.0f} ({r['mb_s']:.1f})" if job.startswith("4k") else f"{r['mb_s']:.0f}"


def cpu(r):
    return f"{r['cpu_us_per_io']:.0f} ({r['osd_cpu_us_per_io']:.0f})"


def main():
    out, a, b = sys.argv[1:4]
    rows, order = read_rows(out)
    print(f"| job | client | IOPS (MB/s), {a} | {b} | ÷ | mean µs, {a} | {b} | ÷ "
          f"| CPU µs/IO (OSDs), {a} | {b} | ÷ (each round) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    goal = []
    for job in order:
        for client, label in CLIENTS.items():
            x, y = rows.get((job, f"{client}-{a}")), rows.get((job, f"{client}-{b}"))
            if not x or not y:
                continue
            each = [ratio(q["cpu_us_per_io"], p["cpu_us_per_io"])
                    for p, q in zip(x["rounds"], y["rounds"])]
            key = "iops" if job.startswith("4k") else "mb_s"
            cpu_ratio = ratio(y["cpu_us_per_io"], x["cpu_us_per_io"])
            print(f"| {job} | {label} | {speed(x, job)} | {speed(y, job)} "
                  f"| {ratio(y[key], x[key]):.2f} | {x['mean_us']:.0f} | {y['mean_us']:.0f} "
                  f"| {ratio(y['mean_us'], x['mean_us']):.2f} | {cpu(x)} | {cpu(y)} "
                  f"| {cpu_ratio:.2f} ({' / '.join(f'{e:.2f}' for e in each)}) |")
            if job.startswith("4k-randwrite"):
                goal.append((f"{job}, {label}", cpu_ratio))
    print()
    print("1m rows: MB/s.")
    if (a, b) == ("crc", "secure"):
        print(f"Goal: secure ≤ {GOAL} × crc CPU per 4 KiB write:")
        for name, r in goal:
            print(f"- {name}: {r:.2f} ({'met' if r <= GOAL else 'not met'})")


if __name__ == "__main__":
    main()
