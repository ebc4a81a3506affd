#!/usr/bin/env python3
"""nbd_bad_input.py HOST PORT VOLUME SIZE [--tls require|on CA_FILE]: what
a broken or hostile NBD client gets from basalt-nbd. Each case opens its
own connection; the server must answer with the protocol's error or close
that connection, and go on serving the others (checked by a good round
trip after every case). Exits non-zero with the first case that went
wrong.

Without --tls, the server runs without TLS (STARTTLS: ERR_POLICY), and
malformed handshakes, options and requests are tried. With --tls require
(a server with --tls require --tls-certificates, its CA in CA_FILE, and a
short --handshake-timeout) the FORCEDTLS cases are tried instead, TLS
through Python's ssl module over X.509 (it has no PSK client); with --tls
on, that nothing negotiated before STARTTLS survives it."""
import socket
import ssl
import struct
import sys
import time

HOST, PORT, VOLUME, SIZE = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), int(sys.argv[4])
TLS_MODE, CA_FILE = (sys.argv[6], sys.argv[7]) if sys.argv[5:6] == ["--tls"] else (None, None)
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
ERR_UNSUP, ERR_POLICY, ERR_INVALID, ERR_UNKNOWN = 2**31 + 1, 2**31 + 2, 2**31 + 3, 2**31 + 6
ERR_TLS_REQD = 2**31 + 5
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_GO, OPT_STARTTLS = 1, 2, 3, 7, 5
OPT_STRUCTURED_REPLY = 8
EINVAL, ENOSPC = 22, 28


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError("closed")
        b += chunk
    return b


def connect(flags=3):
    s = socket.create_connection((HOST, PORT), timeout=10)
    g = recv_exact(s, 18)
    magic, opt, hflags = struct.unpack(">QQH", g)
    if magic != 0x4E42444D41474943 or opt != IHAVEOPT:
        fail("bad greeting")
    if flags is not None:
        s.sendall(struct.pack(">I", flags))
    return s


def send_opt(s, opt, data):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def opt_reply(s):
    magic, opt, rtype, length = struct.unpack(">QIII", recv_exact(s, 20))
    if magic != REP_MAGIC:
        fail("bad option reply magic")
    return rtype, recv_exact(s, length)


def go_data(name, infos=()):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def go(s, name=VOLUME):
    send_opt(s, OPT_GO, go_data(name))
    while True:
        rtype, _ = opt_reply(s)
        if rtype == 1:
            return
        if rtype != 3:
            fail("GO refused: %x" % rtype)


def closed(s, what):
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, EOFError, ssl.SSLError):
        pass
    except socket.timeout:
        fail(what + ": the connection stayed open")
    s.close()


def request(s, cmd, offset, length, flags=0, data=b"", handle=7):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, cmd, handle, offset, length) + data)


def simple_reply(s, handle=7):
    magic, err, h = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != SIMPLE_MAGIC or h != handle:
        fail("bad simple reply")
    return err


def good_round_trip():
    s = connect_tls() if TLS_MODE == "require" else connect()
    go(s)
    request(s, 1, 0, 4096, data=b"\x5a" * 4096)
    if simple_reply(s):
        fail("good write failed")
    request(s, 0, 0, 4096)
    if simple_reply(s) or recv_exact(s, 4096) != b"\x5a" * 4096:
        fail("good read failed")
    request(s, 2, 0, 0)  # DISC
    s.close()


def expect_opt_error(data_fn, want, what):
    s = connect()
    data_fn(s)
    rtype, _ = opt_reply(s)
    if rtype != want:
        fail("%s: reply %x, wanted %x" % (what, rtype, want))
    go(s)  # the connection goes on
    s.close()


def opt_expect(s, opt, data, want, what):
    """Option OPT with DATA gets the reply type WANT."""
    send_opt(s, opt, data)
    rtype, _ = opt_reply(s)
    if rtype != want:
        fail("%s: reply %x, wanted %x" % (what, rtype, want))


def starttls(s):
    """STARTTLS acknowledged, then the TLS handshake (X.509, CA_FILE)."""
    opt_expect(s, OPT_STARTTLS, b"", 1, "STARTTLS")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CA_FILE)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx.wrap_socket(s, server_hostname="localhost")


def connect_tls():
    return starttls(connect())


cases = 0


def case(fn):
    global cases
    fn()
    good_round_trip()
    cases += 1


def tls_reqd_first():
    """FORCEDTLS: options before STARTTLS get ERR_TLS_REQD, and the
    connection goes on to TLS and an export."""
    s = connect()
    for opt, data in ((OPT_GO, go_data(VOLUME)), (OPT_LIST, b""), (OPT_STRUCTURED_REPLY, b""),
                      (99, b"abc")):
        opt_expect(s, opt, data, ERR_TLS_REQD, "option %d before STARTTLS" % opt)
    s = starttls(s)
    go(s)
    s.close()


def tls_export_name_first():
    s = connect()
    send_opt(s, OPT_EXPORT_NAME, VOLUME)
    closed(s, "EXPORT_NAME before STARTTLS")


def tls_abort_first():
    s = connect()
    opt_expect(s, OPT_ABORT, b"", 1, "ABORT before STARTTLS")
    closed(s, "ABORT before STARTTLS")


def tls_starttls_with_data():
    s = connect()
    opt_expect(s, OPT_STARTTLS, b"x", ERR_INVALID, "STARTTLS with data")
    s = starttls(s)  # a proper one still works
    go(s)
    s.close()


def tls_starttls_twice():
    s = connect_tls()
    opt_expect(s, OPT_STARTTLS, b"", ERR_INVALID, "STARTTLS inside TLS")
    go(s)
    s.close()


def tls_plaintext_after_starttls():
    """A GO sent in the clear right behind STARTTLS is never answered:
    the server reads it as a (bad) ClientHello and closes."""
    s = connect()
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_STARTTLS, 0) +
              struct.pack(">QII", IHAVEOPT, OPT_GO, len(go_data(VOLUME))) + go_data(VOLUME))
    rtype, _ = opt_reply(s)
    if rtype != 1:
        fail("STARTTLS: reply %x" % rtype)
    closed(s, "plaintext after STARTTLS")


def tls_garbage_hello():
    s = connect()
    send_opt(s, OPT_STARTTLS, b"")
    opt_reply(s)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 20)
    closed(s, "garbage instead of a ClientHello")


def tls_stalled(half):
    """STARTTLS acknowledged, then half a ClientHello (or nothing): the
    handshake timeout drops the client."""
    s = connect()
    send_opt(s, OPT_STARTTLS, b"")
    opt_reply(s)
    if half:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    closed(s, "a client stalled in the TLS handshake")


def tls_on_forgets_options():
    """--tls on: STRUCTURED_REPLY before STARTTLS does not survive it (the
    spec), so a READ after TLS gets a simple reply."""
    s = connect()
    opt_expect(s, OPT_STRUCTURED_REPLY, b"", 1, "STRUCTURED_REPLY")
    s = starttls(s)
    go(s)
    request(s, 0, 0, 512)
    if simple_reply(s) or len(recv_exact(s, 512)) != 512:
        fail("a READ after STARTTLS")
    request(s, 2, 0, 0)
    s.close()


def pipelined():
    """Requests sent in bursts, as a client at a high queue depth does:
    more than the server's in-flight limit (64) in one send, writes whose
    data the server receives into its buffer with the headers (4 KiB,
    512 bytes) or straight after them (20 KiB), replies in any order. Every
    write is answered, and every byte reads back."""
    s = connect_tls() if TLS_MODE == "require" else connect()
    go(s)
    writes = {}  # handle: (offset, data)
    for i in range(min(128, SIZE // 2 // 4096)):  # the first half
        length = 512 if i % 4 == 0 else 4096
        writes[1000 + i] = (i * 4096, bytes([i % 251 + 1]) * length)
    big = 20 << 10
    for i in range(min(40, SIZE // 2 // big)):  # the second
        writes[2000 + i] = (SIZE // 2 + i * big, bytes([i % 13 + 100]) * big)
    for phase in ([h for h in writes if h < 2000], [h for h in writes if h >= 2000]):
        s.sendall(b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, h, writes[h][0],
                                       len(writes[h][1])) + writes[h][1] for h in phase))
        left = set(phase)
        while left:
            magic, err, h = struct.unpack(">IIQ", recv_exact(s, 16))
            if magic != SIMPLE_MAGIC or h not in left or err:
                fail("pipelined write: reply %x error %d handle %d" % (magic, err, h))
            left.discard(h)
    s.sendall(b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 0, h, off, len(d))
                       for h, (off, d) in writes.items()))
    left = set(writes)
    while left:
        magic, err, h = struct.unpack(">IIQ", recv_exact(s, 16))
        if magic != SIMPLE_MAGIC or h not in left or err:
            fail("pipelined read: reply %x error %d handle %d" % (magic, err, h))
        if recv_exact(s, len(writes[h][1])) != writes[h][1]:
            fail("pipelined read of handle %d: other bytes than written" % h)
        left.discard(h)
    request(s, 2, 0, 0)
    s.close()

if TLS_MODE == "require":
    for fn in (tls_reqd_first, tls_export_name_first, tls_abort_first, tls_starttls_with_data,
               tls_starttls_twice, tls_plaintext_after_starttls, tls_garbage_hello,
               lambda: tls_stalled(False), lambda: tls_stalled(True), pipelined):
        case(fn)
    print("nbd bad input, --tls require: %d cases answered or closed, the server served a "
          "TLS client after each" % cases)
    sys.exit(0)
if TLS_MODE == "on":
    case(tls_on_forgets_options)
    case(tls_starttls_twice)
    print("nbd bad input, --tls on: %d cases, and plain round trips after each" % cases)
    sys.exit(0)

# Handshake.
case(lambda: closed(connect(flags=0), "client flags without FIXED_NEWSTYLE"))
case(lambda: closed(connect(flags=0x80), "unknown client flags"))
def bad_magic():
    s = connect()
    s.sendall(struct.pack(">QII", 0x1234, OPT_GO, 0))
    closed(s, "option without IHAVEOPT")
case(bad_magic)
def huge_option():
    s = connect()
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, 1 << 20))
    closed(s, "an option of 1 MiB")
case(huge_option)
case(lambda: expect_opt_error(lambda s: send_opt(s, OPT_GO, struct.pack(">I", 100) + b"x" * 10),
                              ERR_INVALID, "GO whose name length overruns"))
case(lambda: expect_opt_error(lambda s: send_opt(s, OPT_GO, go_data(b"x" * 5000)),
                              ERR_INVALID, "a 5000-byte name"))
case(lambda: expect_opt_error(lambda s: send_opt(s, 99, b"abc"), ERR_UNSUP, "unknown option"))
case(lambda: expect_opt_error(lambda s: send_opt(s, OPT_STARTTLS, b""), ERR_POLICY, "STARTTLS"))
case(lambda: expect_opt_error(lambda s: send_opt(s, OPT_GO, go_data(b"nope")), ERR_UNKNOWN,
                              "a volume that does not exist"))
case(lambda: expect_opt_error(lambda s: send_opt(s, OPT_GO, go_data(VOLUME + b"@snap")),
                              ERR_UNKNOWN, "a snapshot export"))
case(lambda: expect_opt_error(lambda s: send_opt(s, 8, b"x"), ERR_INVALID,
                              "STRUCTURED_REPLY with data"))
def export_name_missing():
    s = connect()
    send_opt(s, OPT_EXPORT_NAME, b"nope")
    closed(s, "EXPORT_NAME of a missing volume")
case(export_name_missing)
def silent():
    s = connect(flags=None)  # says nothing: the handshake timeout ends it
    t0 = time.time()
    closed(s, "a silent client")
    if time.time() - t0 > 9:
        fail("the handshake timeout did not fire")
case(silent)

# Transmission.
def transmission_errors():
    s = connect()
    go(s)
    for what, cmd, off, length, data, want in (
            ("read beyond the end", 0, SIZE - 512, 1024, b"", EINVAL),
            ("write beyond the end", 1, SIZE, 4096, b"\0" * 4096, ENOSPC),
            ("unaligned read", 0, 100, 512, b"", EINVAL),
            ("unaligned write", 1, 0, 100, b"\0" * 100, EINVAL),
            ("zero-length read", 0, 0, 0, b"", EINVAL),
            ("unknown command", 99, 0, 512, b"", EINVAL),
            ("a read over 32 MiB", 0, 0, 64 << 20, b"", EINVAL),
            ("block status without its context", 7, 0, 4096, b"", EINVAL),
            ("trim beyond the end", 4, SIZE, 4096, b"", EINVAL)):
        request(s, cmd, off, length, data=data)
        err = simple_reply(s)
        if err != want:
            fail("%s: error %d, wanted %d" % (what, err, want))
    request(s, 2, 0, 0)
    s.close()
case(transmission_errors)
def bad_request_magic():
    s = connect()
    go(s)
    s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, 0, 1, 0, 512))
    closed(s, "a request without the magic")
case(bad_request_magic)
def oversize_write():
    s = connect()
    go(s)
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 1, 0, 64 << 20))
    closed(s, "a 64 MiB write")
case(oversize_write)
case(pipelined)
def cut_mid_request():
    s = connect()
    go(s)
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, 1, 0, 4096) + b"x" * 100)
    s.close()  # gone half way through a write's data
case(cut_mid_request)
def cut_mid_handshake():
    s = connect()
    s.sendall(struct.pack(">QI", IHAVEOPT, OPT_GO)[:10])
    s.close()
case(cut_mid_handshake)
print("nbd bad input: %d cases answered or closed, the server served a good client after each"
      % cases)
