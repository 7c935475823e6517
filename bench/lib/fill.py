#!/usr/bin/python3
"""Put COUNT generated messages of SIZE bytes into each Maildir, as an MDA would.

    fill.py --maildir DIR [--maildir DIR ...] --count N --size BYTES --expected FILE
            [--owner UID:GID]

Each file is written to tmp/ and renamed into new/, named the way Dovecot's
own delivery names files (",S=<size>,W=<size with CRLF>") so that Dovecot
can answer LIST and STAT from the names. Files have LF line ends, as Dovecot
stores mail; POP3 sends them with CRLF.

Scenario g fills its 100 mailboxes with one start of this script, not 100.
Every message has a Message-ID unique to this fill (a random tag, and the
mailbox's position on the command line), headers
like real mail, a UTF-8 text part with a line that starts with a dot (it must
survive dot-stuffing both in POP3 and SMTP), and a base64 attachment of random
bytes that pads it to SIZE. One line per message goes to --expected:

    <Message-ID> TAB <sha1 hex of the body, CRLF line ends> TAB <octets on the wire>

which is exactly what sink.py logs, so verify.py can compare the two.
"""
import argparse
import base64
import hashlib
import os
import random
import time
from email.utils import formatdate


def make(i, count, size, tag, rng):
    """One message as bytes with LF line ends; returns (bytes, message-id)."""
    mid = "<%d.%s@bench.popferry.test>" % (i, tag)
    date = formatdate(time.time() - (count - i))
    boundary = "bench-%016x" % rng.getrandbits(64)
    head = (
        "Return-Path: <sender%d@example.org>\n"
        "Received: from mx.example.org (mx.example.org [192.0.2.25])\n"
        "\tby pop.bench.test with ESMTPS id %012x\n"
        "\tfor <bench@bench.test>; %s\n"
        "Date: %s\n"
        "From: Sender %d <sender%d@example.org>\n"
        "To: <bench@bench.test>\n"
        "Subject: bench message %d of %d\n"
        "Message-ID: %s\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"%s\"\n"
        "\n"
    ) % (i % 97, rng.getrandbits(48), date, date, i % 97, i % 97, i, count, mid, boundary)
    text = (
        "--%s\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße! Message %d, 8-bit text on purpose.\n"
        ".this line starts with a dot and must arrive with exactly one\n"
        "\n"
        "--%s\n"
        "Content-Type: application/octet-stream; name=\"pad%d.bin\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
    ) % (boundary, i, boundary, i)
    tail = "\n--%s--\n" % boundary
    head_text = (head + text).encode()
    room = size - len(head_text) - len(tail)
    # base64 with 76-character lines: 57 raw bytes make 77 bytes of text.
    raw = max(0, room // 77 * 57)
    pad = base64.encodebytes(rng.randbytes(raw)) if raw else b""
    # Fill what is left short of SIZE with one shorter base64 line.
    short = room - len(pad) - 1
    if short >= 4:
        pad += base64.b64encode(rng.randbytes(short // 4 * 3)) + b"\n"
    return head_text + pad.rstrip(b"\n") + tail.encode(), mid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maildir", required=True, action="append")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--owner", default=None, help="UID:GID to chown files to")
    a = ap.parse_args()

    uid = gid = -1
    if a.owner:
        uid, gid = (int(x) for x in a.owner.split(":"))
    tag = "%x.%x" % (time.time_ns() // 1000, random.getrandbits(40))
    rng = random.Random(tag)
    stem = "%d.M%dP%d" % (time.time(), time.time_ns() // 1000 % 1000000, os.getpid())
    with open(a.expected, "w") as expected:
        for box, maildir in enumerate(a.maildir):
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(maildir, sub), exist_ok=True)
            for i in range(1, a.count + 1):
                data, mid = make(i, a.count, a.size, "%s.%d" % (tag, box), rng)
                wire = data.replace(b"\n", b"\r\n")
                body = wire[wire.index(b"\r\n\r\n") + 4:]
                name = "%sQ%d.bench,S=%d,W=%d" % (stem, i, len(data), len(wire))
                tmp = os.path.join(maildir, "tmp", name)
                with open(tmp, "wb") as f:
                    f.write(data)
                if uid >= 0:
                    os.chown(tmp, uid, gid)
                os.rename(tmp, os.path.join(maildir, "new", name))
                expected.write("%s\t%s\t%d\n" % (mid, hashlib.sha1(body).hexdigest(), len(wire)))


if __name__ == "__main__":
    main()
