#!/usr/bin/env python3
"""odmr_client.py - a scriptable ODMR customer (RFC 2645) for the tests.

Connects to a provider, optionally STARTTLS, AUTH (PLAIN, LOGIN or CRAM-MD5),
ATRN, and after a 250 plays the SMTP server on the same connection (still
encrypted when TLS was started), storing each message it accepts in DIR.

  odmr_client.py HOST PORT --user U --password P [--mech M] [--tls]
                 [--atrn DOMAINS] [--dir DIR] [--reject-rcpt ADDR]
                 [--drop-in-data N] [--pipeline-after-atrn] [--no-greeting]

Prints one line per provider reply ("< 250 ...") and per event; exits 0 when
the session ended as expected (QUIT/221 after a turn, or the refusal), 1 on
a protocol surprise.
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import ssl
import sys


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, line):
        print("> " + line.decode("latin-1").rstrip("\r\n")[:200], flush=True)
        self.sock.sendall(line)

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            print("< " + line[:200], flush=True)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines


def auth(c, mech, user, password):
    if mech == "PLAIN":
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        c.send(b"AUTH PLAIN " + tok + b"\r\n")
        return c.reply()[0]
    if mech == "LOGIN":
        c.send(b"AUTH LOGIN\r\n")
        for value in (user, password):
            code, _ = c.reply()
            if code != 334:
                return code
            c.send(base64.b64encode(value.encode()) + b"\r\n")
        return c.reply()[0]
    if mech.startswith("SCRAM-"):
        return scram(c, mech, user, password)
    c.send(("AUTH %s\r\n" % mech).encode())
    code, lines = c.reply()
    if code != 334:
        return code
    challenge = base64.b64decode(lines[-1][4:])
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    c.send(base64.b64encode((user + " " + digest).encode()) + b"\r\n")
    return c.reply()[0]


def scram(c, mech, user, password):
    """RFC 5802 client, no channel binding"""
    h = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha1
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, cnonce)
    c.send(("AUTH %s %s\r\n" % (mech, base64.b64encode(("n,," + first_bare).encode()).decode())).encode())
    code, lines = c.reply()
    if code != 334:
        return code
    server_first = base64.b64decode(lines[-1][4:]).decode()
    f = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not f["r"].startswith(cnonce):
        return 0
    salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(f["s"]), int(f["i"]))
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored_key = h(client_key).digest()
    without_proof = "c=biws,r=" + f["r"]
    auth_message = ",".join((first_bare, server_first, without_proof)).encode()
    signature = hmac.new(stored_key, auth_message, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = without_proof + ",p=" + base64.b64encode(proof).decode()
    c.send(base64.b64encode(final.encode()) + b"\r\n")
    code, lines = c.reply()
    if code == 334:         # the server's signature (v=...): check it, then go on
        server_key = hmac.new(salted, b"Server Key", h).digest()
        want = base64.b64encode(hmac.new(server_key, auth_message, h).digest()).decode()
        got = base64.b64decode(lines[-1][4:]).decode()
        if got != "v=" + want:
            print("event: bad server signature", flush=True)
            return 0
        c.send(b"\r\n")
        code, lines = c.reply()
    return code


def serve(c, args):
    """the customer's SMTP server on the turned connection"""
    if args.no_greeting:
        print("event: no greeting sent", flush=True)
        c.line()        # wait for the provider to give up
        return 1
    c.send(b"220 customer.test ESMTP odmr_client\r\n")
    count = 0
    rcpts, sender = [], None
    while True:
        try:
            line = c.line()
        except EOFError:
            print("event: provider closed", flush=True)
            return 1
        print("< " + line[:200], flush=True)
        verb = line[:4].upper()
        if verb == "EHLO":
            c.send(b"250-customer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n")
        elif verb == "MAIL":
            sender, rcpts = line, []
            c.send(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            addr = line[line.index("<") + 1:line.index(">")]
            if args.reject_rcpt and addr == args.reject_rcpt:
                c.send(b"550 5.1.1 no such user here\r\n")
            else:
                rcpts.append(addr)
                c.send(b"250 2.1.5 Ok\r\n")
        elif verb == "DATA":
            c.send(b"354 go ahead\r\n")
            body = []
            while True:
                dl = c.line()
                if dl == ".":
                    break
                body.append(dl)
                if args.drop_in_data and count + 1 == args.drop_in_data and len(body) > 2:
                    print("event: dropping the connection in DATA", flush=True)
                    c.sock.close()
                    return 0
            count += 1
            if args.dir:
                with open(os.path.join(args.dir, "msg%03d" % count), "w") as f:
                    f.write("X-Sender: %s\nX-Rcpts: %s\n" % (sender, ",".join(rcpts)))
                    f.write("\n".join(body) + "\n")
            c.send(("250 2.0.0 Ok: got %d\r\n" % count).encode())
        elif verb == "RSET" or verb == "NOOP":
            c.send(b"250 2.0.0 Ok\r\n")
        elif verb == "QUIT":
            c.send(b"221 2.0.0 bye\r\n")
            print("event: quit after %d messages tls=%s" % (count, isinstance(c.sock, ssl.SSLSocket)),
                  flush=True)
            return 0
        else:
            c.send(b"502 5.5.1 what\r\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--mech", default="CRAM-MD5")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--no-auth", action="store_true")
    p.add_argument("--atrn", default=None)
    p.add_argument("--dir")
    p.add_argument("--reject-rcpt")
    p.add_argument("--drop-in-data", type=int, default=0)
    p.add_argument("--pipeline-after-atrn", action="store_true")
    p.add_argument("--no-greeting", action="store_true")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()

    c = Conn(socket.create_connection((args.host, args.port), args.timeout))
    c.reply()
    c.send(b"EHLO customer.test\r\n")
    c.reply()
    if args.tls:
        c.send(b"STARTTLS\r\n")
        if c.reply()[0] != 220:
            return 1
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock, server_hostname="mx.test")
        print("event: tls %s" % c.sock.version(), flush=True)
        c.send(b"EHLO customer.test\r\n")
        c.reply()
    if not args.no_auth:
        code = auth(c, args.mech, args.user, args.password)
        print("event: auth %d" % code, flush=True)
        if code != 235:
            c.send(b"QUIT\r\n")
            c.reply()
            return 0
    if args.atrn is None:
        c.send(b"QUIT\r\n")
        c.reply()
        return 0
    cmd = ("ATRN %s\r\n" % args.atrn if args.atrn else "ATRN\r\n").encode()
    if args.pipeline_after_atrn:
        cmd += b"NOOP\r\n"
    c.send(cmd)
    code, _ = c.reply()
    print("event: atrn %d" % code, flush=True)
    if code != 250:
        try:
            c.send(b"QUIT\r\n")
            c.reply()
        except (EOFError, OSError):
            pass
        return 0
    return serve(c, args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (EOFError, OSError) as e:
        print("event: %s" % e, flush=True)
        sys.exit(1)
