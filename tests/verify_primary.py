#!/usr/bin/env python3
"""verify_primary.py - a domain's primary MTA for the recipient-probe tests.

usage: verify_primary.py PORT LOG [DELAY]

Speaks enough SMTP (EHLO with PIPELINING, MAIL, RCPT, RSET, NOOP, QUIT) to
be probed.  RCPT takes local parts starting with "ok" or "storm" (250),
defers those starting with "temp" (450) and refuses the rest (550 5.1.1),
after DELAY seconds (default 0).  With VERIFY_PRIMARY_RULES=FILE in the
environment, a line "ADDRESS REPLY" of FILE (read at every RCPT) gives
ADDRESS's reply instead, so a test can change its mind.  DATA is refused (554): a probe must
never send it.  Every RCPT and DATA is appended to LOG as "RCPT addr code"
or "DATA", one a line, flushed at once, so the test counts the probes.
Python 3 stdlib only.
"""

import asyncio
import os
import sys

PORT, LOG = int(sys.argv[1]), sys.argv[2]
DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0


def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


def rule(addr):
    path = os.environ.get("VERIFY_PRIMARY_RULES")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            key, _, reply = line.strip().partition(" ")
            if key.lower() == addr.lower() and reply:
                return reply
    return None


def verdict(addr):
    ruled = rule(addr)
    if ruled:
        return ruled
    local = addr.split("@", 1)[0].lower()
    if local.startswith(("ok", "storm")):
        return "250 2.1.5 Ok"
    if local.startswith("temp"):
        return "450 4.2.0 Mailbox busy, try later"
    return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % addr


async def session(reader, writer):
    def say(line):
        writer.write((line + "\r\n").encode())

    say("220 primary.test ESMTP verify_primary")
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = line.decode("utf-8", "replace").rstrip("\r\n")
        verb = cmd[:4].upper()
        if verb in ("EHLO", "HELO"):
            say("250-primary.test")
            say("250 PIPELINING")
        elif verb == "MAIL":
            say("250 2.1.0 Ok")
        elif verb == "RCPT":
            addr = cmd.split("<", 1)[-1].split(">", 1)[0]
            reply = verdict(addr)
            note("RCPT %s %s" % (addr, reply[:3]))
            if DELAY:
                await asyncio.sleep(DELAY)
            say(reply)
        elif verb == "DATA":
            note("DATA")
            say("554 5.5.1 a probe must not send DATA")
        elif verb in ("RSET", "NOOP"):
            say("250 2.0.0 Ok")
        elif verb == "QUIT":
            say("221 2.0.0 Bye")
            await writer.drain()
            break
        else:
            say("502 5.5.2 Error: command not recognized")
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", PORT, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
