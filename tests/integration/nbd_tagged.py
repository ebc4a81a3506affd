#!/usr/bin/python3
"""nbd_tagged.py: writes through a real NBD client (libnbd) that remember
exactly which writes the server acknowledged, and check them later.

  nbd_tagged.py fill URI LOG [--qd N] [--seconds S]
      4 KiB writes at random offsets (each offset once), N in flight
      (default 16), every block tagged with its offset and sequence
      number. Each acknowledged write is appended to LOG. Stops issuing at
      the first error and waits for what is in flight. Prints one JSON
      line: acked, enospc, other errors, seconds to the first ENOSPC.
      Exit 0 when it stopped on ENOSPC with no other error, 3 when S
      seconds (default 120) passed without one, 1 on any other error.
  nbd_tagged.py check URI LOG
      Reads back every block in LOG: exit 0 when each holds exactly what
      was acknowledged, 1 naming the first that does not.

Debian's python3-libnbd lives in /usr/bin/python3's path, hence the
interpreter above."""
import json
import random
import struct
import sys
import time

import nbd

BS = 4096
MAGIC = 0x42534C54544147  # "BSLTTAG"


def block(offset, seq):
    head = struct.pack("<QQQ", MAGIC, offset, seq)
    return (head * (BS // len(head) + 1))[:BS]


def fill(uri, log, qd, seconds):
    h = nbd.NBD()
    h.connect_uri(uri)
    size = h.get_size()
    offsets = random.Random(7).sample(range(size // BS), size // BS)
    out = open(log, "w")
    inflight = {}  # cookie -> (offset, seq, buf)
    acked = enospc = other = 0
    first_enospc = None
    start = time.monotonic()
    seq = 0
    stop = False
    while inflight or not stop:
        while not stop and len(inflight) < qd and seq < len(offsets):
            off = offsets[seq] * BS
            buf = bytearray(block(off, seq))
            inflight[h.aio_pwrite(buf, off)] = (off, seq, buf)
            seq += 1
        if time.monotonic() - start > seconds:
            stop = True
        if seq >= len(offsets):
            stop = True
        h.poll(1000)
        for cookie in list(inflight):
            try:
                if not h.aio_command_completed(cookie):
                    continue
                off, s, _ = inflight.pop(cookie)
                out.write(f"{off} {s}\n")
                acked += 1
            except nbd.Error as e:
                inflight.pop(cookie)
                stop = True
                if e.errnum == 28:
                    enospc += 1
                    if first_enospc is None:
                        first_enospc = time.monotonic() - start
                else:
                    other += 1
                    print(f"write failed: {e}", file=sys.stderr)
    out.close()
    h.shutdown()
    print(json.dumps({"acked": acked, "enospc": enospc, "other_errors": other,
                      "seconds_to_enospc": first_enospc,
                      "seconds": round(time.monotonic() - start, 2)}))
    if other:
        return 1
    return 0 if enospc else 3


def check(uri, log):
    h = nbd.NBD()
    h.connect_uri(uri)
    n = 0
    for line in open(log):
        off, seq = map(int, line.split())
        got = h.pread(BS, off)
        if got != block(off, seq):
            head = struct.unpack("<QQQ", got[:24])
            print(f"block at {off} (write {seq}) holds {head}, not what was acknowledged")
            return 1
        n += 1
    h.shutdown()
    print(f"{n} acknowledged writes read back intact")
    return 0


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] not in ("fill", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, uri, log = args[:3]
    opts = dict(zip(args[3::2], args[4::2]))
    if mode == "check":
        return check(uri, log)
    return fill(uri, log, int(opts.get("--qd", 16)), float(opts.get("--seconds", 120)))


if __name__ == "__main__":
    sys.exit(main())
