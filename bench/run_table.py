#!/usr/bin/env python3
"""run_table.py DIR: the Markdown table, results.json and plots of bench/run.sh.

DIR/rows has one line per run: JOB TARGET ROUND FIO_JSON CPU_SECONDS
OSD_CPU_SECONDS (the CPU of every process of that system, and of its OSDs
alone, during the run, ramp included). Rows of one job and target over
the rounds are averaged; "spread" is (max - min) / mean of their IOPS.
DIR/space (if there) has SYSTEM STEP USED_BYTES SECONDS DATA_BYTES per line
(DATA_BYTES: Ceph's object data alone, "-" for Basalt), DIR/space-size the
volume's size. DIR/ec (with run.sh --ec) names the code, K+M, of the
targets on erasure-coded pools (basalt-ec-nbd ...), which get their own
table of ratios: EC against 3 copies, Basalt against Ceph on EC. With
gnuplot installed, iops.png and p99.png."""
import json
import os
import shutil
import subprocess
import sys

from nbd_table import side

LABELS = {
    "device": "device (raw file, io_uring direct)",
    "device-fdatasync": "device + fdatasync",
    "basalt-nbd": "Basalt, basalt-nbd",
    "basalt-native": "Basalt, libbasalt (native)",
    "ceph-rbd": "Ceph, librbd",
    "ceph-nbd": "Ceph, qemu-nbd",
}
SPACE_STEPS = ["created", "written"] + [f"overwritten-{i}" for i in range(1, 6)] + \
    ["half-trimmed", "deleted"]
# The space run's 4 KiB steps on a second fresh volume: each row is the raw
# bytes the step added over what it wrote (an eighth of the volume each).
SPACE_4K_STEPS = [
    ("4k-dense", "4k-created", "4 KiB random writes, the first eighth of the volume whole "
     "(every 4 KiB once: rows and objects end whole)"),
    ("4k-sparse", "4k-dense", "4 KiB random writes, as many bytes again at random over the "
     "second half (a quarter of it: rows and objects written in part)"),
]
SYSTEMS = {"basalt": "Basalt", "basalt-ec": "Basalt EC", "ceph": "Ceph", "ceph-ec": "Ceph EC"}


def add_ec_labels(out):
    """With DIR/ec, the EC twin of every Basalt and Ceph target, labelled
    with its code, right after it (LABELS' order is the table's)."""
    if not os.path.exists(f"{out}/ec"):
        return
    code = open(f"{out}/ec").read().strip()
    labels = {}
    for t, label in LABELS.items():
        labels[t] = label
        if not t.startswith("device"):
            system, front = t.split("-", 1)
            labels[f"{system}-ec-{front}"] = label.replace(",", f" {code},", 1)
    LABELS.clear()
    LABELS.update(labels)
    for s in ("basalt", "ceph"):
        SYSTEMS[f"{s}-ec"] = f"{SYSTEMS[s]} {code}"


def mean(xs):
    return sum(xs) / len(xs) if xs else 0


def read_rows(out):
    ramp = float(open(f"{out}/ramp").read())
    runs = {}
    order = []
    for line in open(f"{out}/rows"):
        job, target, rnd, path, cpu, osd_cpu = line.split()
        rw = job.split("-")[1]
        iops, mbs, lat, p99, runtime_s = side(f"{out}/{path}", rw)
        ops = iops * (runtime_s + ramp)  # the ramp ran at about the same rate
        runs.setdefault((job, target), []).append(
            {"round": int(rnd), "iops": iops, "mb_s": mbs, "mean_us": lat, "p99_us": p99,
             "cpu_us_per_io": float(cpu) * 1e6 / ops if ops else None,
             "osd_cpu_us_per_io": float(osd_cpu) * 1e6 / ops if ops else None})
        if job not in order:
            order.append(job)
    rows = {}
    for (job, target), rs in runs.items():
        iops = [r["iops"] for r in rs]
        r = {"job": job, "system": target, "rounds": rs,
             "iops": mean(iops), "mb_s": mean([r["mb_s"] for r in rs]),
             "mean_us": mean([r["mean_us"] for r in rs]),
             "p99_us": mean([r["p99_us"] for r in rs]),
             "spread": (max(iops) - min(iops)) / mean(iops) if mean(iops) else 0,
             "cpu_us_per_io": None, "osd_cpu_us_per_io": None}
        if not target.startswith("device") and all(x["cpu_us_per_io"] for x in rs):
            r["cpu_us_per_io"] = mean([x["cpu_us_per_io"] for x in rs])
            r["osd_cpu_us_per_io"] = mean([x["osd_cpu_us_per_io"] for x in rs])
        rows[(job, target)] = r
    return rows, order


def perf_table(rows, order):
    print("| job | system | IOPS | MB/s | mean µs | p99 µs | spread | CPU µs/IO (OSDs) "
          "| basalt-nbd ÷ this | native ÷ this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for job in order:
        for target in LABELS:
            r = rows.get((job, target))
            if not r:
                continue
            ratios = []
            for ours in ("basalt-nbd", "basalt-native"):
                b = rows.get((job, ours))
                # EC rows: the EC table below compares them.
                ok = b and r["iops"] and not target.startswith("basalt") and "-ec-" not in target
                ratios.append(f"{b['iops'] / r['iops']:.2f}" if ok else "")
            cpu = ""
            if r["cpu_us_per_io"] is not None:
                cpu = f"{r['cpu_us_per_io']:.0f} ({r['osd_cpu_us_per_io']:.0f})"
            print(f"| {job} | {LABELS[target]} | {r['iops']:.0f} | {r['mb_s']:.1f} "
                  f"| {r['mean_us']:.0f} | {r['p99_us']:.0f} | {r['spread'] * 100:.0f}% "
                  f"| {cpu} | {ratios[0]} | {ratios[1]} |")


def ratio(a, b, key):
    x, y = a and a[key], b and b[key]
    return x / y if x and y else None


def ec_table(rows, order, out):
    """Each system's EC target against its replicated one through the same
    client, and Basalt against Ceph on EC: IOPS, mean latency and CPU per
    I/O (every process of the system), as ratios."""
    if not os.path.exists(f"{out}/ec"):
        return []
    code = open(f"{out}/ec").read().strip()
    clients = [("native (libbasalt; librbd)", "basalt-native", "ceph-rbd"),
               ("NBD (basalt-nbd; qemu-nbd)", "basalt-nbd", "ceph-nbd")]
    keys = [("iops", "IOPS"), ("mean_us", "mean µs"), ("cpu_us_per_io", "CPU µs/IO")]
    lines, result = [], []
    for job in order:
        for client, ours, theirs in clients:
            pairs = {"basalt": (ours, ours.replace("-", "-ec-", 1)),
                     "ceph": (theirs, theirs.replace("-", "-ec-", 1)),
                     "basalt ÷ ceph on ec": (ours.replace("-", "-ec-", 1),
                                             theirs.replace("-", "-ec-", 1))}
            cells, r = [], {"job": job, "client": client}
            for name, (a, b) in pairs.items():
                # EC ÷ replicated, and Basalt ÷ Ceph.
                num, den = (b, a) if name != "basalt ÷ ceph on ec" else (a, b)
                for key, _ in keys:
                    v = ratio(rows.get((job, num)), rows.get((job, den)), key)
                    cells.append(f"{v:.2f}" if v is not None else "")
                    r[f"{name} {key}"] = v
            if any(cells):
                lines.append(f"| {job} | {client} | " + " | ".join(cells) + " |")
                result.append(r)
    if lines:
        print()
        print(f"Erasure coding {code} against 3 copies, each system through the same client "
              f"(EC ÷ 3 copies), and Basalt against Ceph on {code} (Basalt ÷ Ceph): ratios of "
              f"the rows above.")
        print()
        print("| job | client | " + " | ".join(
            f"{who}: {label}" for who in ("Basalt EC ÷ 3 copies", "Ceph EC ÷ 3 copies",
                                         "Basalt ÷ Ceph, EC") for _, label in keys) + " |")
        print("|---|---|" + "---:|" * 9)
        for line in lines:
            print(line)
    return result


def msgr_rtt_us(out):
    """The mean of the messenger's 4 KiB QD1 round trips over the rounds
    (DIR/msgr-ROUND.md, bench/msgr_bench's table), or None."""
    rtts = []
    for name in sorted(os.listdir(out)):
        if not (name.startswith("msgr-") and name.endswith(".md")):
            continue
        for line in open(f"{out}/{name}"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 8 and cells[0] == "messenger" and cells[1] == "4 KiB" \
                    and cells[2] == "1":
                rtts.append(float(cells[5]))
    return mean(rtts) if rtts else None


# Issue 22's targets, each against a limit measured in the same run:
# (job, what is compared, the limit's formula in words, factor, direction).
LIMITS = [
    ("4k-randwrite-qd1", "mean µs", "2 × messenger 4 KiB round trip + device fdatasync mean",
     1.3, "≤"),
    ("4k-randwrite-qd32", "IOPS", "device IOPS ÷ copies", 0.8, "≥"),
    ("4k-randread-qd32", "IOPS", "device IOPS", 0.6, "≥"),
    ("1m-write-qd4", "MB/s", "device + fdatasync MB/s ÷ copies", 0.8, "≥"),
    ("1m-read-qd4", "MB/s", "device MB/s", 0.9, "≥"),
]
CPU_TARGETS = [("4k-randwrite-qd32", 60), ("4k-randread-qd32", 25)]


def limit_value(job, rows, copies, rtt):
    dev, sync = rows.get((job, "device")), rows.get((job, "device-fdatasync"))
    if job == "4k-randwrite-qd1":
        return 2 * rtt + sync["mean_us"] if sync and rtt else None
    if job == "4k-randwrite-qd32":
        return dev["iops"] / copies if dev else None
    if job == "4k-randread-qd32":
        return dev["iops"] if dev else None
    if job == "1m-write-qd4":
        return sync["mb_s"] / copies if sync else None
    if job == "1m-read-qd4":
        return dev["mb_s"] if dev else None
    return None


def limits_table(out, rows, order):
    """Basalt against the limits of this machine, measured in this run."""
    copies = int(open(f"{out}/copies").read()) if os.path.exists(f"{out}/copies") else 3
    rtt = msgr_rtt_us(out)
    result = []
    lines = []
    for job, what, formula, factor, sense in LIMITS:
        if job not in order:
            continue
        lim = limit_value(job, rows, copies, rtt)
        if lim is None:
            continue
        key = {"mean µs": "mean_us", "IOPS": "iops", "MB/s": "mb_s"}[what]
        target = factor * lim
        cells = []
        for ours in ("basalt-nbd", "basalt-native"):
            b = rows.get((job, ours))
            if not b:
                cells.append("")
                continue
            v = b[key]
            # NBD reads of 1 MiB have their own, lower target.
            t = 0.8 * lim if job == "1m-read-qd4" and ours == "basalt-nbd" else target
            met = v <= t if sense == "≤" else v >= t
            cells.append(f"{v:.0f} ({v / lim:.2f}×, {'met' if met else 'not met'})")
            result.append({"job": job, "system": ours, "what": what, "limit": lim,
                           "target": t, "value": v, "met": met})
        note = f" (round trip {rtt:.0f} µs)" if job == "4k-randwrite-qd1" else ""
        goal = f"{sense} {factor} × limit" + (", NBD ≥ 0.8" if job == "1m-read-qd4" else "")
        lines.append(f"| {job} | {what} | {formula}{note} | {lim:.0f} | {goal} "
                     f"| {cells[0]} | {cells[1]} |")
    for job, us in CPU_TARGETS:
        cells = []
        for ours in ("basalt-nbd", "basalt-native"):
            b = rows.get((job, ours))
            v = b and b["cpu_us_per_io"]
            cells.append(f"{v:.0f} ({'met' if v <= us else 'not met'})" if v else "")
            if v:
                result.append({"job": job, "system": ours, "what": "CPU µs/IO", "limit": None,
                               "target": us, "value": v, "met": v <= us})
        if any(cells):
            lines.append(f"| {job} | CPU µs/IO, all processes | | | ≤ {us} "
                         f"| {cells[0]} | {cells[1]} |")
    if lines:
        print()
        print(f"Limits of this machine for {copies} copies, measured in this run, and Basalt "
              f"against them (value, value ÷ limit, whether issue 22's target is met):")
        print()
        print("| job | compared | limit | limit value | target | basalt-nbd | native |")
        print("|---|---|---|---:|---|---:|---:|")
        for line in lines:
            print(line)
    return result


def space_table(out):
    path = f"{out}/space"
    if not os.path.exists(path):
        return []
    size = int(open(f"{out}/space-size").read())
    used, settled, object_data = {}, {}, {}
    for line in open(path):
        system, step, b, secs, *rest = line.split()
        used[(system, step)] = int(b)
        settled[(system, step)] = int(secs)
        if rest and rest[0] != "-":
            object_data[(system, step)] = int(rest[0])
    systems = [s for s in SYSTEMS if (s, "created") in used]
    mib = 1 << 20
    print()
    print(f"Space: raw bytes the OSDs use (every copy or chunk, metadata and journals "
          f"included), above what they used with the empty {size // mib} MiB volume created, "
          f"after each step; logical data is what the volume holds. In brackets: used ÷ "
          f"logical, and the seconds after the step until the figure last changed (both "
          f"systems report usage to their monitors every few seconds).")
    print()
    print("| step | logical data MiB | " + " | ".join(
        f"{SYSTEMS[s]} MiB (× logical)" for s in systems) + " |")
    print("|---|---:|" + "---:|" * len(systems))
    logical = {"created": 0, "half-trimmed": size // 2, "deleted": 0}
    result = []
    for step in SPACE_STEPS:
        if not all((s, step) in used for s in systems):
            continue
        data = logical.get(step, size)
        cells = []
        for s in systems:
            d = used[(s, step)] - used[(s, "created")]
            x = f"{d / data:.2f}×, " if data else ""
            cells.append(f"{round(d / mib)} ({x}{settled[(s, step)]} s)")
            result.append({"system": s, "step": step, "used_bytes": used[(s, step)],
                           "above_created_bytes": d, "logical_bytes": data,
                           "settled_after_s": settled[(s, step)]})
        print(f"| {step} | {data // mib} | " + " | ".join(cells) + " |")
    print("| snapshot deleted | | not measured: Basalt has no snapshots yet |" +
          " |" * (len(systems) - 1))
    result += space_per_written(used, settled, object_data, systems, size)
    return result


def space_per_written(used, settled, data, systems, size):
    """Raw bytes per byte written: the whole volume in 1 MiB writes, and
    the 4 KiB steps (each adds what it wrote: an eighth of the volume).
    For Ceph, its object data alone beside the whole figure."""
    mib = 1 << 20
    rows = [("written", "created", "1 MiB sequential writes, the whole volume", size)]
    rows += [(step, before, what, size // 8) for step, before, what in SPACE_4K_STEPS]
    # (system, figures, header)
    columns = []
    for s in systems:
        if (s, "created") in data:
            columns.append((s, data, f"{SYSTEMS[s]}: object data"))
            columns.append((s, used, f"{SYSTEMS[s]}: all (+ RocksDB, BlueFS)"))
        else:
            columns.append((s, used, SYSTEMS[s]))
    lines, result = [], []
    for step, before, what, written in rows:
        if not all((s, step) in used and (s, before) in used for s in systems):
            continue
        cells = []
        for s, figures, _ in columns:
            d = figures[(s, step)] - figures[(s, before)]
            cells.append(f"{d / written:.2f} ({round(d / mib)} MiB)")
        for s in systems:
            if step == "written":
                continue
            r = {"system": s, "step": step, "used_bytes": used[(s, step)],
                 "above_created_bytes": used[(s, step)] - used[(s, "4k-created")],
                 "added_bytes": used[(s, step)] - used[(s, before)], "logical_bytes": written,
                 "settled_after_s": settled[(s, step)]}
            if (s, step) in data:
                r["data_bytes"] = data[(s, step)]
                r["added_data_bytes"] = data[(s, step)] - data[(s, before)]
            result.append(r)
        lines.append(f"| {what} | {written // mib} | " + " | ".join(cells) + " |")
    if lines:
        print()
        print("Raw bytes the OSDs use per byte written, on a fresh volume: GiB per GiB (in "
              "brackets: MiB the step added). Ceph's object data alone (`ceph osd df`'s "
              "kb_used_data), then with its RocksDB and BlueFS, which grow and shrink as they "
              "compact; Basalt's journal and metadata areas are of fixed size.")
        print()
        print("| writes | MiB written | " + " | ".join(h for _, _, h in columns) + " |")
        print("|---|---:|" + "---:|" * len(columns))
        for line in lines:
            print(line)
    return result


def plots(out, rows, order):
    if not shutil.which("gnuplot"):
        print("run_table: no gnuplot, so no plots", file=sys.stderr)
        return
    targets = [t for t in LABELS if any((j, t) in rows for j in order)]
    for metric, title, ylabel in (("iops", "IOPS (higher is better)", "IOPS"),
                                  ("p99_us", "p99 latency (lower is better)", "µs")):
        dat = f"{out}/{metric}.dat"
        with open(dat, "w") as f:
            f.write("job " + " ".join(f'"{LABELS[t]}"' for t in targets) + "\n")
            for j in order:
                vals = [rows[(j, t)][metric] if (j, t) in rows else float("nan")
                        for t in targets]
                f.write(j + " " + " ".join(f"{v:.1f}" for v in vals) + "\n")
        png = f"{out}/{'iops' if metric == 'iops' else 'p99'}.png"
        script = f"""set terminal pngcairo noenhanced size 1400,700 font ",10"
set output "{png}"
set title "{title}, per job and system (log scale)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set logscale y
set ylabel "{ylabel}"
set key outside right top vertical
set grid ytics
set xtics rotate by -20
set datafile missing "nan"
plot for [i=2:{len(targets) + 1}] "{dat}" using i:xtic(1) title columnheader(i)
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    out = sys.argv[1]
    add_ec_labels(out)
    rows, order = read_rows(out)
    perf_table(rows, order)
    ec = ec_table(rows, order, out)
    limits = limits_table(out, rows, order)
    space = space_table(out)
    plots(out, rows, order)
    with open(f"{out}/results.json", "w") as f:
        json.dump({"jobs": list(rows.values()), "ec": ec, "limits": limits, "space": space},
                  f, indent=1)


if __name__ == "__main__":
    main()
