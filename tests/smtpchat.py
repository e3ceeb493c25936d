#!/usr/bin/env python3
"""smtpchat.py - send raw bytes to an SMTP server and check its replies.

For the protocol tests that swaks cannot express (smuggling, bare LF, NUL,
pipelining, overlong lines, STARTTLS injection).  Python 3 stdlib only.

usage: smtpchat.py [-v] [-t SECONDS] HOST PORT SCRIPT|-

SCRIPT has one step a line; blank lines and lines starting with # are skipped:

  send BYTES        send BYTES, written with Python escapes (\\r \\n \\x00 \\\\);
                    everything after "send " is the data, blanks included
  sendx EXPR        send the bytes a Python expression gives, e.g.
                    sendx b"Received: x\\r\\n" * 101
  expect REGEX      read one complete reply (all its "250-" continuation lines)
                    and search it with REGEX (re.MULTILINE, so ^ anchors at
                    each line of a multi-line reply)
  expect_close      the server closes the connection, sending nothing more
  expect_silence N  nothing at all arrives for N seconds
  starttls          do a TLS handshake (no certificate checks) on the socket
  sleep N           pause N seconds
  timeout N         the per-step limit from now on (default 10 s)

Exit status: 0 all steps passed, 1 a step failed (the message says which line
of the script, what was expected and what came), 2 usage or connection error.
"""

import codecs
import re
import socket
import ssl
import sys
import time


class Mismatch(Exception):
    pass


class Chat:
    def __init__(self, host, port, timeout, verbose):
        self.timeout = timeout
        self.verbose = verbose
        self.buf = b""
        self.eof = False
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log(self, direction, data):
        if self.verbose:
            sys.stderr.write("%s %r\n" % (direction, data))

    def fill(self, deadline):
        """Read more bytes into self.buf; False on EOF or when the deadline passes."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except ssl.SSLError as e:
            raise Mismatch("TLS error while reading: %s" % e)
        if not data:
            self.eof = True
            return False
        self.log("<-", data)
        self.buf += data
        return True

    def read_line(self, deadline):
        while b"\n" not in self.buf:
            if self.eof or not self.fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_reply(self):
        """One complete reply as text, lines joined by \\n, without CRLF."""
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            line = self.read_line(deadline)
            if line is None:
                got = "\n".join(lines) + self.buf.decode("latin-1")
                why = "connection closed" if self.eof else "timed out after %gs" % self.timeout
                raise Mismatch("%s while waiting for a reply; got so far: %r" % (why, got))
            if not line.endswith(b"\r\n"):
                raise Mismatch("reply line not ended by CRLF: %r" % line)
            text = line[:-2].decode("utf-8", "replace")
            if not re.match(r"^[2-5][0-9][0-9]([ -]|$)", text):
                raise Mismatch("malformed reply line: %r" % text)
            if lines and text[:3] != lines[0][:3]:
                raise Mismatch("reply code changed inside a multi-line reply: %r" % (lines + [text]))
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                return "\n".join(lines)

    def send(self, data):
        self.log("->", data)
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Mismatch("send failed: %s" % e)

    def expect(self, regex):
        reply = self.read_reply()
        if not re.search(regex, reply, re.MULTILINE):
            raise Mismatch("expected a reply matching %r, got %r" % (regex, reply))

    def expect_close(self):
        deadline = time.monotonic() + self.timeout
        while not self.eof:
            if self.buf:
                raise Mismatch("expected the connection to close, got %r" % self.buf)
            if not self.fill(deadline) and not self.eof:
                raise Mismatch("connection still open after %gs" % self.timeout)
        if self.buf:
            raise Mismatch("expected the connection to close, got %r" % self.buf)

    def expect_silence(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.buf:
                raise Mismatch("expected silence for %gs, got %r" % (seconds, self.buf))
            if self.eof:
                raise Mismatch("expected silence for %gs, the connection closed" % seconds)
            self.fill(deadline)
        if self.buf:
            raise Mismatch("expected silence for %gs, got %r" % (seconds, self.buf))

    def starttls(self, host):
        if self.buf:
            raise Mismatch("bytes arrived in plaintext before the TLS handshake: %r" % self.buf)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        except (ssl.SSLError, OSError) as e:
            raise Mismatch("TLS handshake failed: %s" % e)
        self.log("==", "TLS %s %s" % (self.sock.version(), self.sock.cipher()[0]))


def decode_bytes(text):
    return codecs.escape_decode(text.encode("utf-8"))[0]


def run(chat, steps):
    for lineno, line in steps:
        if line.startswith("send "):
            chat.send(decode_bytes(line[5:]))
            continue
        word, _, arg = line.partition(" ")
        arg = arg.strip()
        try:
            if word == "sendx":
                data = eval(arg, {"__builtins__": {}}, {})
                if not isinstance(data, bytes):
                    raise Mismatch("sendx: %r is not bytes" % arg)
                chat.send(data)
            elif word == "expect":
                chat.expect(arg)
            elif word == "expect_close":
                chat.expect_close()
            elif word == "expect_silence":
                chat.expect_silence(float(arg))
            elif word == "starttls":
                chat.starttls("mx.test")
            elif word == "sleep":
                time.sleep(float(arg))
            elif word == "timeout":
                chat.timeout = float(arg)
            else:
                raise Mismatch("unknown step %r" % word)
        except Mismatch as e:
            raise Mismatch("script line %d (%s): %s" % (lineno, line[:80], e))


def main(argv):
    verbose = False
    timeout = 10.0
    args = argv[1:]
    while args and args[0].startswith("-") and args[0] != "-":
        opt = args.pop(0)
        if opt == "-v":
            verbose = True
        elif opt == "-t" and args:
            timeout = float(args.pop(0))
        else:
            args = []
            break
    if len(args) != 3:
        sys.stderr.write("usage: smtpchat.py [-v] [-t SECONDS] HOST PORT SCRIPT|-\n")
        return 2
    host, port, script = args
    text = sys.stdin.read() if script == "-" else open(script, encoding="utf-8").read()
    steps = [(n, l.lstrip().rstrip("\r")) for n, l in enumerate(text.split("\n"), 1)
             if l.strip() and not l.lstrip().startswith("#")]
    try:
        chat = Chat(host, int(port), timeout, verbose)
    except OSError as e:
        sys.stderr.write("smtpchat: cannot connect to %s:%s: %s\n" % (host, port, e))
        return 2
    try:
        run(chat, steps)
    except Mismatch as e:
        sys.stderr.write("smtpchat: %s\n" % e)
        return 1
    finally:
        chat.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
