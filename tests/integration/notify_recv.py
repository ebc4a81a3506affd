#!/usr/bin/env python3
"""The receiving end of sd_notify(3), as systemd's is for a Type=notify unit,
for tests/integration/notify.sh.

  notify_recv.py SOCKET LOG

Binds a Unix datagram socket at SOCKET (give it to the daemons as
NOTIFY_SOCKET) and appends one line per message to LOG: the sender's PID
(from the kernel's credentials, as systemd takes it) and the message's
assignments separated by '|'. A sender that says READY=1 is frozen with
SIGSTOP before its line is written, so whatever the test checks after
seeing the line was already true when the daemon declared itself ready;
the test resumes it with SIGCONT. Runs until killed.
"""
import os
import signal
import socket
import struct
import sys


def main() -> None:
    path, log = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(path)
    ucred = struct.calcsize("iII")
    while True:
        data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:ucred])[0]
        fields = data.decode(errors="replace").strip("\n").split("\n")
        if "READY=1" in fields and pid > 0:
            os.kill(pid, signal.SIGSTOP)
        with open(log, "a") as out:
            out.write(f"{pid} {'|'.join(fields)}\n")


if __name__ == "__main__":
    main()
