#!/usr/bin/python3
"""The "limit" client: the least work that moves a POP3 mailbox to SMTP.

    limit.py relay --pop3-port P [--tls --ca-file F] --user U --password W
                   --smtp-port S --rcpt ADDR [--polls N] [--chain]
    limit.py stat  --pop3-port P --user U [--user U ...] --password W
                   (prints "<count> <octets>", summed over the mailboxes)

relay: log in (USER, PASS and STAT in one flight), then send RETR i + DELE i
for every message while a reader takes the replies off the wire; each
message goes to the SMTP relay as soon as it is complete: MAIL, RCPT and
DATA in one flight, the message (POP3 and SMTP share CRLF and dot-stuffing,
so its bytes are passed through untouched), then the final 250 is awaited
before the next MAIL: two round trips per message. With --chain the next
MAIL, RCPT and DATA follow the end-of-data dot in the same flight
(RFC 2920 allows it), so a message costs one round trip; a relay that
stalls on commands behind the dot (Postfix's smtpd without pipelining
enabled for the client) would make this slower, not faster. QUIT to the POP3 server, which makes the deletions
final, only after the relay accepted every message; on any error the client
drops the connection without QUIT and the server keeps everything.

It keeps no state, writes nothing to disk and holds each message whole in
memory: it is the ceiling popferry is measured against, not a safe tool.
--polls N repeats the whole session N times in this one process (scenario c:
the cost of TCP + TLS + login on an empty mailbox without a process start).
"""
import argparse
import asyncio
import ssl
import sys

QUEUE = 4           # messages read ahead of the relay (bounds memory)
# StreamReader refuses a line (here: a whole message) longer than its limit;
# scenario e has a 100 MiB message.
LIMIT = 1 << 27


class ProtocolError(Exception):
    pass


async def pop3_login(a, user):
    tls = None
    if a.tls:
        tls = ssl.create_default_context(cafile=a.ca_file)
    r, w = await asyncio.open_connection("127.0.0.1", a.pop3_port, ssl=tls,
                                         server_hostname="localhost" if tls else None,
                                         limit=LIMIT)
    await ok(r)                                             # greeting
    w.write(b"USER %s\r\nPASS %s\r\nSTAT\r\n" % (user.encode(), a.password.encode()))
    await ok(r)
    await ok(r)
    stat = (await ok(r)).split()
    return r, w, int(stat[1]), int(stat[2])


async def ok(r):
    line = await r.readuntil(b"\r\n")
    if not line.startswith(b"+OK"):
        raise ProtocolError("POP3: %r" % line)
    return line


async def pop3_quit(r, w):
    w.write(b"QUIT\r\n")
    await ok(r)
    w.close()


async def smtp_reply(r, want):
    while True:
        line = await r.readuntil(b"\r\n")
        if not line.startswith(want):
            raise ProtocolError("SMTP: wanted %r, got %r" % (want, line))
        if line[3:4] != b"-":
            return


async def retrieve(r, w, n, queue):
    """Send RETR+DELE for 1..n and put each message (dot-stuffed, with its
    terminating ".CRLF") on the queue."""
    async def send():
        for lo in range(1, n + 1, 256):
            w.write(b"".join(b"RETR %d\r\nDELE %d\r\n" % (i, i)
                             for i in range(lo, min(n, lo + 255) + 1)))
            await w.drain()
    sender = asyncio.create_task(send())
    for _ in range(n):
        await ok(r)
        first = await r.readexactly(3)
        msg = first if first == b".\r\n" else first + await r.readuntil(b"\r\n.\r\n")
        await queue.put(msg)
        await ok(r)                                         # DELE
    await sender


async def relay(a, r, w, n):
    queue = asyncio.Queue(QUEUE)
    reader = asyncio.create_task(retrieve(r, w, n, queue))
    sr, sw = await asyncio.open_connection("127.0.0.1", a.smtp_port, limit=LIMIT)
    await smtp_reply(sr, b"220")
    sw.write(b"EHLO limit.bench.test\r\n")
    await smtp_reply(sr, b"250")
    envelope = b"MAIL FROM:<limit@bench.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % a.rcpt.encode()
    if a.chain:
        sw.write(envelope)
    for i in range(n):
        get = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
        if get not in done:                                 # the reader failed
            get.cancel()
            reader.result()
        msg = get.result()
        if not a.chain:
            sw.write(envelope)
        for code in (b"250", b"250", b"354"):
            await smtp_reply(sr, code)
        sw.write(msg)
        if a.chain and i + 1 < n:
            sw.write(envelope)                              # behind the dot
        await sw.drain()
        await smtp_reply(sr, b"250")                        # accepted
    await reader
    sw.write(b"QUIT\r\n")
    await smtp_reply(sr, b"221")
    sw.close()


async def stat(a):
    # One total for all mailboxes (scenario g has 100): 0 means every one
    # of them is empty.
    messages = octets = 0
    for user in a.user:
        r, w, n, size = await pop3_login(a, user)
        messages, octets = messages + n, octets + size
        await pop3_quit(r, w)
    print(messages, octets)


async def main(a):
    if a.mode == "stat":
        return await stat(a)
    for _ in range(a.polls):
        r, w, n, _ = await pop3_login(a, a.user[0])
        if n:
            await relay(a, r, w, n)
        await pop3_quit(r, w)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("relay", "stat"))
    ap.add_argument("--pop3-port", type=int, required=True)
    ap.add_argument("--tls", action="store_true", help="implicit TLS")
    ap.add_argument("--ca-file")
    ap.add_argument("--user", required=True, action="append",
                    help="the mailbox; stat takes several")
    ap.add_argument("--password", required=True)
    ap.add_argument("--smtp-port", type=int)
    ap.add_argument("--rcpt", default="bench@bench.test")
    ap.add_argument("--polls", type=int, default=1)
    ap.add_argument("--chain", action="store_true",
                    help="send the next MAIL behind the end-of-data dot")
    args = ap.parse_args()
    if args.mode == "relay" and len(args.user) > 1:
        ap.error("relay moves one mailbox: give --user once")
    try:
        asyncio.run(main(args))
    except (ProtocolError, OSError, asyncio.IncompleteReadError) as e:
        sys.exit("limit: %s" % e)
