#!/usr/bin/python3
"""Check that a run delivered every filled message exactly once, intact.

    verify.py --expected FILE --sink-log LOG --offset BYTES
    verify.py --expected FILE --maildir DIR        (mpop-maildir)

--expected is fill.py's list (Message-ID, body sha1, size). With --sink-log,
only what sink.py appended after --offset (the log's size before the run)
counts. With --maildir, every file in new/ and cur/ is read and its body
hashed the way the sink does it (CRLF line ends).

Prints one line, e.g. "2000 expected, 2000 received, 0 missing, 0 twice,
0 unknown, 0 damaged", and exits 0 only if all of the last four are zero.
"""
import argparse
import collections
import hashlib
import os
import re
import sys

MSGID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)


def from_sink(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        for line in f.read().decode().splitlines():
            mid, digest, _ = line.split("\t")
            yield mid, digest


def from_maildir(path):
    for sub in ("new", "cur"):
        folder = os.path.join(path, sub)
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            split = data.find(b"\r\n\r\n")
            m = MSGID.search(data, 0, split)
            yield (m.group(1).decode() if m else "<none>",
                   hashlib.sha1(data[split + 4:]).hexdigest())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expected", required=True)
    ap.add_argument("--sink-log")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--maildir")
    a = ap.parse_args()

    expected = {}
    with open(a.expected) as f:
        for line in f:
            mid, digest, _ = line.rstrip("\n").split("\t")
            expected[mid] = digest
    got = list(from_maildir(a.maildir) if a.maildir else from_sink(a.sink_log, a.offset))

    seen = collections.Counter(mid for mid, _ in got)
    missing = sum(1 for mid in expected if mid not in seen)
    twice = sum(c - 1 for mid, c in seen.items() if mid in expected and c > 1)
    unknown = sum(c for mid, c in seen.items() if mid not in expected)
    damaged = sum(1 for mid, d in got if mid in expected and expected[mid] != d)
    print("%d expected, %d received, %d missing, %d twice, %d unknown, %d damaged"
          % (len(expected), len(got), missing, twice, unknown, damaged))
    sys.exit(1 if missing or twice or unknown or damaged else 0)


if __name__ == "__main__":
    main()
