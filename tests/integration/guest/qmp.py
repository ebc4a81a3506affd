#!/usr/bin/env python3
"""qmp.py: the few QMP exchanges vm_enospc.sh needs (stdlib only).

  qmp.py watch SOCK SECONDS
      For a qemu started with -S: connects, starts the guest with `cont`,
      then polls query-status until the VM stops with status "io-error".
      Exit 0 when it did and a BLOCK_IO_ERROR event said why (a write,
      action "stop", nospace true); 1 when qemu exited first (the guest
      ran on, e.g. it saw the error itself), the VM stopped otherwise, or
      SECONDS passed.
  qmp.py cont SOCK SECONDS
      The VM must be in "io-error": sends `cont`, then waits until qemu
      exits (exit 0: the guest powered off), or the VM stops on an error
      again (exit 4), or SECONDS pass (exit 1).
Each prints one JSON line: the outcome, seconds, and the events seen."""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, seconds=10):
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rb")
        self.events = []
        greeting = self.read()
        if greeting is None or "QMP" not in greeting:
            raise RuntimeError(f"no QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def read(self):
        """The next message, or None once qemu closed the socket (a qemu
        that exits with our last command unread resets the connection)."""
        try:
            line = self.file.readline()
        except ConnectionResetError:
            return None
        return json.loads(line) if line else None

    def command(self, name, **args):
        """The command's "return", or None when qemu went away first."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError:
            return None
        while True:
            m = self.read()
            if m is None:
                return None
            if "event" in m:
                self.events.append(m)
            elif "error" in m:
                raise RuntimeError(f"{name}: {m['error']}")
            elif "return" in m:
                return m["return"]

    def status(self):
        r = self.command("query-status")
        return None if r is None else r["status"]


def brief(events):
    return [{"event": e["event"], **e.get("data", {})} for e in events]


def stopped_on_enospc(q):
    """The BLOCK_IO_ERROR that stopped the VM for want of space, if any."""
    for e in q.events:
        d = e.get("data", {})
        if (e["event"] == "BLOCK_IO_ERROR" and d.get("operation") == "write"
                and d.get("action") == "stop" and d.get("nospace") is True):
            return d
    return None


def watch(q, seconds):
    first = q.status()
    if first != "prelaunch":
        return {"outcome": f"expected a VM started with -S, found {first}"}, 1
    q.command("cont")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        s = q.status()
        if s is None:
            return {"outcome": "qemu exited before the VM stopped"}, 1
        if s == "io-error":
            end = time.monotonic()
            while stopped_on_enospc(q) is None and time.monotonic() - end < 2:
                q.status()  # events come in between replies
                time.sleep(0.1)
            ok = stopped_on_enospc(q) is not None
            return {"outcome": "io-error" if ok else "io-error without an ENOSPC BLOCK_IO_ERROR",
                    "seconds": round(end - start, 2)}, 0 if ok else 1
        if s not in ("running", "debug"):
            return {"outcome": f"VM stopped with status {s}"}, 1
        time.sleep(0.2)
    return {"outcome": f"still {q.status()} after {seconds} s"}, 1


def cont(q, seconds):
    s = q.status()
    if s != "io-error":
        return {"outcome": f"expected status io-error before cont, found {s}"}, 1
    q.command("cont")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        s = q.status()
        if s is None:
            return {"outcome": "exited", "seconds": round(time.monotonic() - start, 2)}, 0
        if s == "io-error":
            return {"outcome": "io-error again", "seconds": round(time.monotonic() - start, 2)}, 4
        time.sleep(0.2)
    return {"outcome": f"still {s} after {seconds} s"}, 1


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("watch", "cont"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    q = Qmp(path)
    result, code = (watch if mode == "watch" else cont)(q, seconds)
    result["events"] = brief(q.events)
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
