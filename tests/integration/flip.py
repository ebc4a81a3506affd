#!/usr/bin/env python3
"""flip.py DEVICE DATA [--chunk N] [--bytes K] [--find]: damages the copy
of an object in an OSD's store file, as a failing disk would.

DATA is the object's content (the file given to `basalt object put`);
its chunk N (4 KiB, default 1) is found in DEVICE at 4 KiB-aligned
offsets, and K bytes there (default 16) have bits flipped, written back
with O_DIRECT so a running OSD reading with O_DIRECT sees them at once.
Every place the chunk is found is damaged: a block freed after the
object moved may still hold the same bytes, and which is live cannot be
told from outside. Prints the device offset of each block (the chunk's
offset less N x 4 KiB), one per line. --find only prints them. Exit 1
when the chunk is not found."""
import mmap
import os
import sys

CHUNK = 4096


def find(dev, want):
    found = []
    with open(dev, "rb", buffering=0) as f:
        off = 0
        while True:
            buf = f.read(64 << 20)
            if not buf:
                return found
            at = buf.find(want)
            while at >= 0:
                if at % CHUNK == 0:
                    found.append(off + at)
                at = buf.find(want, at + 1)
            off += len(buf)


def main():
    args = sys.argv[1:]
    only_find = "--find" in args
    args = [a for a in args if a != "--find"]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dev, data = args[:2]
    opts = dict(zip(args[2::2], args[3::2]))
    chunk = int(opts.get("--chunk", 1))
    nbytes = int(opts.get("--bytes", 16))
    with open(data, "rb") as f:
        f.seek(chunk * CHUNK)
        want = f.read(CHUNK)
    places = find(dev, want)
    if not places:
        print(f"chunk {chunk} of {data} is not in {dev}", file=sys.stderr)
        return 1
    for at in places:
        print(at - chunk * CHUNK)
    if only_find:
        return 0
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, CHUNK)
    for at in places:
        os.preadv(fd, [buf], at)
        for i in range(100, 100 + nbytes):
            buf[i] ^= 0x5A
        os.pwritev(fd, [buf], at)
    os.fsync(fd)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
