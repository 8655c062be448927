#!/usr/bin/env python3
"""A real SMTP server on TCP for integration tests (aiosmtpd).

Every accepted message becomes one file DIR/new/<unique>.eml: the raw bytes as
received, preceded by one added header `X-Received-At: <epoch seconds.micros>`
so tests can measure delivery latency. Files are written to DIR/tmp and then
renamed, so a reader never sees half a message.

Faults are chosen per message by the recipient's local part, so one test can
trigger them without reconfiguring the server:
  reject5xx...@    -> `550 5.1.1 rejected` at RCPT (a permanent failure)
  tempfail4xx...@  -> `451 4.3.0 try again later` at DATA (transient; not stored)
The chaos suite's faults hit only the first attempt of each Message-ID, so a
correct client recovers by retrying:
  flaky4xx...@     -> first attempt: `451` at DATA, not stored
  flaky421...@     -> first attempt: `421` at DATA and the connection is closed
  lostreply...@    -> first attempt: the message IS stored, then the connection
                      is dropped before the reply (the client cannot know)
  slow<ms>-...@    -> every attempt: the reply to DATA waits <ms> milliseconds
Everything else gets `250 OK`.

One log line per message on stderr, never with an address (no customer emails
in logs).

Usage: smtp_sink.py --host 127.0.0.1 --port 2525 --maildir DIR [--ready-file PATH]
"""

import argparse
import asyncio
import itertools
import logging
import os
import signal
import sys
import time
import uuid

from aiosmtpd.smtp import SMTP

REJECT_PREFIX = "reject5xx"
TEMPFAIL_PREFIX = "tempfail4xx"
FLAKY_4XX_PREFIX = "flaky4xx"
FLAKY_421_PREFIX = "flaky421"
LOST_REPLY_PREFIX = "lostreply"
SLOW_PREFIX = "slow"


def log(msg):
    print(f"smtp_sink: {msg}", file=sys.stderr, flush=True)


def local_part(address):
    return address.rsplit("@", 1)[0].lower()


def header_value(raw, name):
    """First value of a header in the raw message head, for the log line."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    prefix = name.lower().encode() + b":"
    for line in head.splitlines():
        if line.lower().startswith(prefix):
            return line[len(prefix):].strip().decode("ascii", "replace")
    return "-"


class MaildirSink:
    def __init__(self, maildir):
        self.tmp = os.path.join(maildir, "tmp")
        self.new = os.path.join(maildir, "new")
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(self.new, exist_ok=True)
        os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
        self.counter = itertools.count(1)
        # DATA attempts seen per Message-ID, for the first-attempt-only faults.
        self.attempts = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if local_part(address).startswith(REJECT_PREFIX):
            log("rejected 550 at RCPT")
            return "550 5.1.1 rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        received_at = time.time()
        raw = envelope.original_content or b""
        if any(local_part(a).startswith(TEMPFAIL_PREFIX) for a in envelope.rcpt_tos):
            log(f"tempfail 451 at DATA message_id={header_value(raw, 'Message-ID')}")
            return "451 4.3.0 try again later"

        locals_ = [local_part(a) for a in envelope.rcpt_tos]
        message_id = header_value(raw, "Message-ID")
        attempt = self.attempts.get(message_id, 0) + 1
        self.attempts[message_id] = attempt
        first = attempt == 1
        if first and any(l.startswith(FLAKY_4XX_PREFIX) for l in locals_):
            log(f"flaky 451 at DATA message_id={message_id}")
            return "451 4.3.0 try again later"
        if first and any(l.startswith(FLAKY_421_PREFIX) for l in locals_):
            log(f"flaky 421 and disconnect at DATA message_id={message_id}")
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 closing connection"
        for l in locals_:
            if l.startswith(SLOW_PREFIX) and l[len(SLOW_PREFIX):].split("-", 1)[0].isdigit():
                await asyncio.sleep(int(l[len(SLOW_PREFIX):].split("-", 1)[0]) / 1000)
                received_at = time.time()
        lose_reply = first and any(l.startswith(LOST_REPLY_PREFIX) for l in locals_)

        # Keep the message's own line ending style for the added header.
        eol = b"\r\n" if b"\r\n" in raw else b"\n"
        data = b"X-Received-At: %.6f" % received_at + eol + raw
        name = f"{time.time_ns()}.{os.getpid()}.{next(self.counter)}.{uuid.uuid4().hex[:8]}.eml"
        tmp_path = os.path.join(self.tmp, name)
        with open(tmp_path, "wb") as f:
            f.write(data)
        # rename is atomic within one filesystem: readers of new/ see whole files.
        os.rename(tmp_path, os.path.join(self.new, name))
        log(
            f"accepted file={name} bytes={len(raw)} rcpts={len(envelope.rcpt_tos)} "
            f"message_id={message_id} attempt={attempt}"
        )
        if lose_reply:
            log(f"stored, dropping the connection before the reply message_id={message_id}")
            server.transport.abort()
        return "250 OK"


def write_ready_file(path, host, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{host} {port}\n")
    os.rename(tmp, path)


async def serve(args):
    handler = MaildirSink(args.maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp-sink.local", enable_SMTPUTF8=True),
        host=args.host,
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]  # the real one when --port 0
    log(f"listening on {args.host}:{port}, maildir {args.maildir}")
    if args.ready_file:
        write_ready_file(args.ready_file, args.host, port)

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Stop listening and drop open sessions; wait_closed() would otherwise wait
    # for clients that keep a connection open (python >= 3.12).
    server.close()
    if hasattr(server, "close_clients"):
        server.close_clients()
    log("stopped")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--ready-file", help="written (atomically) once listening: '<host> <port>'")
    args = parser.parse_args()
    # aiosmtpd's own logger can print addresses at INFO; keep only real problems.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
