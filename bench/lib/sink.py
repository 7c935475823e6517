#!/usr/bin/python3
"""The bench's mail receiver: SMTP and LMTP on one port, accepting everything.

    sink.py --port 24525 --log FILE [--no-chunking]

It must never be the bottleneck, so it is a bare asyncio.Protocol: no
coroutine per line, every reply to a burst of pipelined commands in one write,
and the end of DATA found with bytes.find from where the previous search
stopped (a 100 MiB message is scanned once, not once per packet).

EHLO offers PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES and CHUNKING, as
Postfix does (--no-chunking leaves CHUNKING out, to measure what BDAT buys).
A client that says LHLO instead gets LMTP: one reply per recipient after the
final dot or BDAT LAST (getmail6 delivers that way). BDAT n [LAST] takes
exactly n octets, whatever comes first; with no recipient the LAST chunk is
still read, then refused with 554 (RFC 3030 4.2).

For each accepted message one line is appended to the log and flushed BEFORE
the 250 goes out, so once a client has exited, everything it was told was
accepted is in the log:

    <Message-ID> TAB <sha1 hex of the body> TAB <message octets>

The body is what follows the first empty line (un-dot-stuffed after DATA, the
BDAT chunks joined as sent), CRLF line ends:
the form fill.py hashes. Headers are not compared because every tool adds its
own (Received, Delivered-To, ...). The runner remembers the log size before a
run and reads only what was appended, so the log is never truncated under
the sink's feet.

No Nagle or ACK tricks: the socket behaves as a normal TCP receiver, and a
client that writes small pieces without TCP_NODELAY pays for it here as it
would against Postfix.
"""
import argparse
import asyncio
import hashlib
import re
import signal

MSGID = re.compile(rb"^Message-ID:[ \t]*(?:\r\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)
CAPS = (b"250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
        b"250-SIZE 1073741824\r\n250 ENHANCEDSTATUSCODES\r\n")
CHUNKING_CAPS = CAPS.replace(b"250 ENHANCEDSTATUSCODES", b"250-ENHANCEDSTATUSCODES\r\n250 CHUNKING")


def unstuff(msg):
    """DATA's dot-stuffed CRLF text without the final dot, as sent."""
    if msg.startswith(b".."):
        msg = msg[1:]
    return msg.replace(b"\r\n..", b"\r\n.")


def record(msg):
    """Log line for one message as sent (after un-dot-stuffing)."""
    split = msg.find(b"\r\n\r\n")
    head, body = (msg[:split], msg[split + 4:]) if split >= 0 else (msg, b"")
    m = MSGID.search(head)
    mid = m.group(1).decode("ascii", "replace") if m else "<none>"
    return "%s\t%s\t%d\n" % (mid, hashlib.sha1(body).hexdigest(), len(msg))


class Session(asyncio.Protocol):
    def __init__(self, log, caps):
        self.log = log
        self.caps = caps
        self.bdat = 0          # octets of the current BDAT chunk still to come
        self.last = False      # the current chunk is BDAT ... LAST
        self.chunks = bytearray()
        self.buf = bytearray()
        self.data = False      # inside DATA
        self.scan = 0          # where the next search for the end of DATA starts
        self.lmtp = False
        self.rcpts = 0

    def connection_made(self, transport):
        self.tr = transport
        transport.write(b"220 sink.bench.test ESMTP popferry bench sink\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        out = []
        while self.buf:
            if self.bdat:
                take = min(self.bdat, len(self.buf))
                self.chunks += self.buf[:take]
                del self.buf[:take]
                self.bdat -= take
                if self.bdat:
                    break
                out.append(self.chunk_done())
                continue
            if self.data:
                # buf starts with the CRLF that ended the DATA line, so the
                # end marker is always CRLF . CRLF, even for an empty message.
                end = self.buf.find(b"\r\n.\r\n", self.scan)
                if end < 0:
                    self.scan = max(0, len(self.buf) - 4)
                    break
                self.log.write(record(unstuff(bytes(self.buf[2:end + 2]))))
                del self.buf[:end + 5]
                self.data = False
                n = self.rcpts if self.lmtp else 1
                self.rcpts = 0
                out.append(b"250 2.0.0 Ok: logged\r\n" * n)
                continue
            eol = self.buf.find(b"\n")
            if eol < 0:
                break
            line = bytes(self.buf[:eol]).rstrip(b"\r")
            del self.buf[:eol + 1]
            reply = self.command(line)
            if reply is None:
                out.append(b"221 2.0.0 Bye\r\n")
                self.flush(out)
                self.tr.close()
                return
            out.append(reply)
            if self.data:
                self.buf[:0] = b"\r\n"
                self.scan = 0
        self.flush(out)

    def chunk_done(self):
        """The reply to a BDAT whose octets have all arrived."""
        if not self.last:
            return b"250 2.0.0 Ok: chunk\r\n"
        n = self.rcpts if self.lmtp else 1
        rcpts, self.rcpts = self.rcpts, 0
        msg, self.chunks = bytes(self.chunks), bytearray()
        if not rcpts:
            return b"554 5.5.1 No valid recipients\r\n"
        self.log.write(record(msg))
        return b"250 2.0.0 Ok: logged\r\n" * n

    def flush(self, out):
        if out:
            self.log.flush()           # the log line is on disk before its 250
            self.tr.write(b"".join(out))

    def command(self, line):
        verb = line[:4].upper()
        if verb in (b"EHLO", b"LHLO"):
            self.lmtp = verb == b"LHLO"
            self.rcpts = 0
            return self.caps
        if verb == b"HELO":
            return b"250 sink.bench.test\r\n"
        if verb in (b"MAIL", b"RSET"):
            self.rcpts = 0
            self.chunks = bytearray()
            return b"250 2.1.0 Ok\r\n"
        if verb == b"RCPT":
            self.rcpts += 1
            return b"250 2.1.5 Ok\r\n"
        if verb == b"DATA":
            if not self.rcpts:
                return b"503 5.5.1 RCPT first\r\n"
            self.data = True
            return b"354 Go ahead, end with <CRLF>.<CRLF>\r\n"
        if verb == b"BDAT" and self.caps is CHUNKING_CAPS:
            words = line.split()
            self.last = len(words) > 2 and words[2].upper() == b"LAST"
            self.bdat = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            return self.chunk_done() if not self.bdat else b""
        if verb == b"NOOP":
            return b"250 2.0.0 Ok\r\n"
        if verb == b"QUIT":
            return None
        return b"502 5.5.2 Not implemented\r\n"


async def serve(port, logpath, caps):
    loop = asyncio.get_running_loop()
    with open(logpath, "a", buffering=1 << 16) as log:
        server = await loop.create_server(lambda: Session(log, caps), "127.0.0.1", port,
                                          reuse_address=True, backlog=256)
        done = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set_result, None)
        await done
        server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--no-chunking", action="store_true",
                    help="do not offer CHUNKING (BDAT)")
    a = ap.parse_args()
    asyncio.run(serve(a.port, a.log, CAPS if a.no_chunking else CHUNKING_CAPS))
