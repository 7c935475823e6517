#!/usr/bin/python3
"""A TCP proxy that makes loopback look like a link with a round-trip time.

    proxy.py --delay-ms 10 24111=24110 24996=24995

Each LISTEN=UPSTREAM pair listens on 127.0.0.1:LISTEN and forwards to
127.0.0.1:UPSTREAM. Whatever is read from one side is written to the other
side delay-ms later, in order, without a bandwidth limit: 10 ms each way is
a 20 ms RTT for every command/reply exchange, while pipelined traffic flows
as fast as the tools can make it.

Connection set-up is charged as on a real link: connect() returns at once on
loopback, but the server's first bytes (POP3 greeting, TLS ServerHello) are
held until they would have arrived after a three-way handshake (SYN, SYN-ACK,
ACK: the server accepts 3 x delay after the SYN and its first byte lands
delay later). Only connections through this proxy are slowed; the lo device
is untouched (no netem, no root needed).
"""
import argparse
import asyncio
import signal
import socket


async def pump(src, dst, delay, not_before):
    """Copy src to dst; each chunk leaves `delay` s after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def receive():
        while True:
            try:
                chunk = await src.read(1 << 18)
            except (ConnectionError, OSError):
                chunk = b""
            queue.put_nowait((max(loop.time(), not_before) + delay, chunk))
            if not chunk:
                return

    async def send():
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not chunk:          # pass the half-close on, also delayed
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                dst.write(chunk)
                await dst.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(receive(), send())


def nodelay(writer):
    # The proxy must not add Nagle delays of its own to what it forwards.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def handle(creader, cwriter, upstream, delay):
    t0 = asyncio.get_running_loop().time()
    try:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        cwriter.close()
        return
    nodelay(cwriter)
    nodelay(uwriter)
    await asyncio.gather(pump(creader, uwriter, delay, t0 + 2 * delay),
                         pump(ureader, cwriter, delay, t0 + 3 * delay))
    for w in (cwriter, uwriter):
        w.close()


async def main(pairs, delay):
    loop = asyncio.get_running_loop()
    servers = []
    for listen, upstream in pairs:
        servers.append(await asyncio.start_server(
            lambda r, w, up=upstream: handle(r, w, up, delay),
            "127.0.0.1", listen, reuse_address=True))
    done = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set_result, None)
    await done
    for s in servers:
        s.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay")
    ap.add_argument("pairs", nargs="+", metavar="LISTEN=UPSTREAM")
    a = ap.parse_args()
    pairs = [tuple(int(p) for p in pair.split("=", 1)) for pair in a.pairs]
    asyncio.run(main(pairs, a.delay_ms / 1000.0))
