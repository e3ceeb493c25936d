#!/usr/bin/env python3
"""lmtp_sink.py - an LMTP server (RFC 2033) on a unix socket for the tests,
like smtp-sink for LMTP: it stores each message it accepts in DIR, once per
recipient, and answers after the final dot with one reply per recipient.

  lmtp_sink.py SOCKET DIR [--reject USER@DOMAIN] [--temp USER@DOMAIN]

--reject gives that recipient 550 5.1.1 after the dot, --temp 452 4.2.2
(mailbox full).  It serves connections one after another until killed.
"""
import argparse
import os
import socket


def serve(conn, args, counter):
    f = conn.makefile("rb")

    def send(line):
        conn.sendall(line.encode() + b"\r\n")

    send("220 lmtp_sink LMTP ready")
    rcpts = []
    while True:
        raw = f.readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        verb = line[:4].upper()
        if verb == "LHLO":
            send("250-lmtp_sink")
            send("250-PIPELINING")
            send("250-8BITMIME")
            send("250 ENHANCEDSTATUSCODES")
        elif verb == "MAIL":
            rcpts = []
            send("250 2.1.0 Ok")
        elif verb == "RCPT":
            rcpts.append(line[line.index("<") + 1:line.index(">")])
            send("250 2.1.5 Ok")
        elif verb == "DATA":
            send("354 go ahead")
            body = []
            while True:
                dl = f.readline()
                if not dl or dl in (b".\r\n", b".\n"):
                    break
                body.append(dl[1:] if dl.startswith(b"..") else dl)
            for r in rcpts:      # RFC 2033 4.2: one reply per recipient
                if r == args.reject:
                    send("550 5.1.1 <%s>: no such user" % r)
                elif r == args.temp:
                    send("452 4.2.2 <%s>: mailbox full" % r)
                else:
                    counter[0] += 1
                    with open(os.path.join(args.dir, "lmtp%03d" % counter[0]), "wb") as out:
                        out.write(("X-Rcpt: %s\n" % r).encode() + b"".join(body))
                    send("250 2.0.0 <%s> delivered" % r)
        elif verb in ("RSET", "NOOP"):
            send("250 2.0.0 Ok")
        elif verb == "QUIT":
            send("221 2.0.0 bye")
            return
        else:
            send("500 5.5.2 what")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    p.add_argument("dir")
    p.add_argument("--reject")
    p.add_argument("--temp")
    args = p.parse_args()
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(args.socket)
    s.listen(5)
    counter = [0]
    while True:
        conn, _ = s.accept()
        try:
            serve(conn, args, counter)
        finally:
            conn.close()


if __name__ == "__main__":
    main()
