#!/usr/bin/env python3
"""A scripted SMTP/LMTP receiver on aiosmtpd for popferry's interop tests.

One process serves several listeners, each given as
  --listen NAME,PROTO,ADDRESS[,FLAG...]
where PROTO is smtp or lmtp, ADDRESS is 127.0.0.1:PORT or unix:/PATH and the
FLAGs are:
  starttls    offer STARTTLS (--cert/--key); AUTH only after it
  auth        offer AUTH PLAIN LOGIN for --user/--password
  pipelining  advertise PIPELINING (aiosmtpd handles pipelined commands
              but never says so)
  no8bit      do not advertise 8BITMIME
  smtputf8    advertise SMTPUTF8
  data-anyway answer DATA with 354 even when no RCPT was accepted, as a
              broken relay would, and keep whatever arrives (even nothing)

What each recipient gets is chosen by its local part, so parallel tests
pick their own outcome:
  rcpt550-*      550 at RCPT
  rcpt450-*      450 at RCPT
  rcpt450once-*  450 at RCPT throughout the first connection that names this
                 address (one fetch), then 250
  data550-*      after the data: 550 (LMTP: for this recipient; SMTP: for
                 the transaction)
  data450-*      the same with 450
  anything else  250
Lines over 998 bytes get aiosmtpd's own "500 Line too long" after the data.

Every transaction that ends in a 250 for at least one recipient is kept in
--dump-dir as two files with one stem: STEM.eml, the bytes as received
(dot-unstuffed, CRLF kept), and STEM.json, written last, so a test that sees
the .json can read both. The JSON names the listener, the protocol, HELO,
MAIL FROM and its parameters, rcpt_tos (those given the message), refused
(each refused recipient with its reply), TLS and the AUTH identity.
"""
import argparse
import asyncio
import itertools
import json
import os
import signal
import ssl
import time

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Stands in for a recipient while a "data-anyway" listener runs DATA with
# none accepted; never written to a dump.
NOBODY = "\x00nobody"
RCPT_REPLIES = {
    "rcpt550-": "550 5.1.1 <{}>: recipient refused by rule",
    "rcpt450-": "450 4.2.0 <{}>: recipient deferred by rule",
}
DATA_REPLIES = {
    "data550-": "550 5.6.0 <{}>: message refused by rule",
    "data450-": "450 4.3.0 <{}>: message deferred by rule",
}


def local_part(address):
    return address.rsplit("@", 1)[0].lower()


def data_reply(address):
    for prefix, reply in DATA_REPLIES.items():
        if local_part(address).startswith(prefix):
            return reply.format(address)
    return None


# Numbers the connections of every listener, for rcpt450once-.
CONNECTIONS = itertools.count()


class Handler:
    """The hooks aiosmtpd calls, for one listener."""

    def __init__(self, name, flags, dump_dir, seen_once):
        self.name = name
        self.flags = flags
        self.dump_dir = dump_dir
        self.seen_once = seen_once
        self.serial = itertools.count()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if "no8bit" in self.flags:
            responses = [r for r in responses if r != "250-8BITMIME"]
        if "pipelining" in self.flags:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        part = local_part(address)
        reply = None
        for prefix, text in RCPT_REPLIES.items():
            if part.startswith(prefix):
                reply = text.format(address)
        if part.startswith("rcpt450once-"):
            if not hasattr(session, "serial"):
                session.serial = next(CONNECTIONS)
            first = self.seen_once.setdefault(address.lower(), session.serial)
            if first == session.serial:
                reply = "450 4.2.0 <%s>: deferred once by rule" % address
        if reply is not None:
            refused(envelope).append({"rcpt": address, "reply": reply})
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpts = [r for r in envelope.rcpt_tos if r != NOBODY]
        replies = {r: data_reply(r) for r in rcpts}
        if isinstance(server, LMTP):
            kept = [r for r in rcpts if replies[r] is None]
            lines = [replies[r] or "250 2.0.0 <%s> delivered" % r for r in rcpts]
            if kept:
                self.keep(session, envelope, kept, server)
            return "\r\n".join(lines)
        failed = [reply for reply in replies.values() if reply is not None]
        if failed:
            return failed[0]
        stem = self.keep(session, envelope, rcpts, server)
        return "250 2.0.0 OK kept as %s" % stem

    def keep(self, session, envelope, rcpts, server):
        stem = "%s-%d-%d-%d" % (self.name, time.time_ns(), os.getpid(), next(self.serial))
        base = os.path.join(self.dump_dir, stem)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or b"")
        record = {
            "listener": self.name,
            "protocol": "lmtp" if isinstance(server, LMTP) else "smtp",
            "helo": session.host_name,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": rcpts,
            "rcpt_options": envelope.rcpt_options,
            "refused": refused(envelope),
            "bytes": len(envelope.original_content or b""),
            "tls": session.ssl is not None,
            "auth": session.auth_data if isinstance(session.auth_data, str) else None,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(record, f)
        os.rename(base + ".json.tmp", base + ".json")
        return stem


def refused(envelope):
    """The recipients refused in this transaction (the envelope is new for each)."""
    if not hasattr(envelope, "refused"):
        envelope.refused = []
    return envelope.refused


def protocol_class(proto, data_anyway):
    base = LMTP if proto == "lmtp" else SMTP

    class Receiver(base):
        async def smtp_DATA(self, arg):
            if data_anyway and self.envelope is not None and not self.envelope.rcpt_tos:
                self.envelope.rcpt_tos.append(NOBODY)
            await super().smtp_DATA(arg)

    return Receiver


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            if auth_data.login.decode() == user and auth_data.password.decode() == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    return check


async def serve(args):
    seen_once = {}
    servers = []
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    for spec in args.listen:
        name, proto, address, *flags = spec.split(",")
        handler = Handler(name, set(flags), args.dump_dir, seen_once)
        kwargs = {
            "hostname": "aiosmtpd.popferry.test",
            "ident": "popferry-test-aiosmtpd " + name,
            "enable_SMTPUTF8": "smtputf8" in flags,
        }
        if "starttls" in flags:
            kwargs["tls_context"] = tls
        if "auth" in flags:
            kwargs["authenticator"] = authenticator(args.user, args.password)
            kwargs["auth_require_tls"] = "starttls" in flags
        cls = protocol_class(proto, "data-anyway" in flags)

        def factory(cls=cls, handler=handler, kwargs=kwargs):
            return cls(handler, loop=loop, **kwargs)

        if address.startswith("unix:"):
            path = address[len("unix:"):]
            if os.path.exists(path):
                os.unlink(path)
            servers.append(await loop.create_unix_server(factory, path))
            os.chmod(path, 0o666)
        else:
            host, port = address.rsplit(":", 1)
            servers.append(await loop.create_server(factory, host, int(port)))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--dump-dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
