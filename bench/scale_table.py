#!/usr/bin/env python3
"""The table of one bench/scale.sh run for N objects per OSD, from the
"KEY VALUE" lines it recorded (bench/results/scale-*/scale-N.vars)."""
import os
import sys


def main(path):
    v = {}
    for line in open(path):
        k, _, val = line.rstrip("\n").partition(" ")
        v[k] = val
    n = int(v["n"])
    hz = os.sysconf("SC_CLK_TCK")
    mib = lambda b: int(b) / 2**20
    blocks_tib = n * 128 * 1024 / 2**40  # TiB of 128 KiB blocks N objects take
    rss = [int(x) for x in v["rss_fill"].split()]
    mean = sum(rss) / len(rss)
    growth = (mean - int(v["rss_empty"])) / n
    ticks = [int(x) for x in v["cpu_ticks"].split()]
    num = lambda k: float(v[k]) if k in v and not v[k].startswith(">") else None
    rows = [
        ("objects per OSD (4 KiB each, one 128 KiB block); grace", f"{n:,}; {v['grace']}"),
        ("fill: s / objects per s (3 copies each)", f"{float(v['fill_s']):.1f} / {n / float(v['fill_s']):,.0f}"),
        ("RSS of an empty OSD (MiB)", f"{mib(v['rss_empty']):.1f}"),
        ("RSS per OSD after the fill (MiB, osd.0/1/2)", " / ".join(f"{mib(r):.1f}" for r in rss)),
        ("RSS growth per object (bytes)", f"{growth:.0f}"),
        ("GiB of RSS per TiB of blocks: whole RSS / growth alone", f"{mean / 2**30 / blocks_tib:.2f} / {growth * n / 2**30 / blocks_tib:.2f}"),
        ("idle CPU per OSD, 20 s (% of a core, osd.0/1/2)", " / ".join(f"{t / hz / 20 * 100:.2f}" for t in ticks)),
        ("osd.0: SIGTERM to exit (s)", v.get("t_shutdown", "-")),
        ("osd.0: start to up in the map (s)", v.get("t_up", "-")),
        (f"osd.0: start to reads of {v.get('read_objects', '?')} objects it is primary of done (s)", v.get("t_read", "-")),
        ("osd.0: start to every PG active+clean (s; PG states come by beacon)", v.get("t_clean", "-")),
    ]
    if "rss_restart" in v:
        rows.append(("osd.0 RSS after its restart (MiB)", f"{mib(v['rss_restart']):.1f}"))
    if "t_peer" in v:
        rows += [
            (f"osd.2 away 60 s, {int(v['changed']):,} objects rewritten: start to active+clean (s)", v["t_peer"]),
            ("  bytes the OSDs sent + received meanwhile (basalt_osd_msgr_bytes_total)", f"{int(v['peer_wire']):,}"),
            ("  basalt_osd_peering_bytes_total grew by", f"{int(v['peer_bytes']):,}" if int(v["peer_bytes"]) else "not exported"),
            ("  bytes recovered (basalt_osd_recovered_bytes_total)", f"{int(v['peer_recovered']):,}"),
        ]
    if "t_backfill" in v:
        t = num("t_backfill")
        b, o = int(v["backfill_bytes"]), int(v["backfill_objects"])
        rows += [
            ("osd.1 replaced by an empty store: start to active+clean (s)", v["t_backfill"]),
            ("  bytes recovered / MB/s", f"{b:,} / {b / t / 1e6:.1f}" if t else f"{b:,} / -"),
            ("  objects recovered / per s / MB/s of the 4 KiB written", f"{o:,} / {o / t:,.0f} / {o * 4096 / t / 1e6:.1f}" if t else f"{o:,}"),
        ]
    rows += [
        ("OSDs marked down after the fill (the script's own stops: 3)", v.get("downs", "-")),
        ("whole run for this N (s)", v.get("run_s", "-")),
    ]
    print(f"\n| {n:,} objects per OSD | |\n|---|---:|")
    for k, val in rows:
        print(f"| {k} | {val} |")


if __name__ == "__main__":
    main(sys.argv[1])
