#!/usr/bin/env python3
"""bench/tls-sessions.py - memory per concurrent STARTTLS session (issue 14 point 6).

Starts a private spoold with a self-signed certificate (certtool), opens
SESSIONS connections (default 10,000) from several 127.0.0.x addresses, and
on each: greeting, EHLO, STARTTLS, the handshake, EHLO again over TLS; then
holds them all open.  spoold's anonymous RSS (RssAnon, /proc/PID/status) is
read before the first connection and once every session is up; the
difference divided by the sessions is the memory a session costs.  The same
is measured for plain sessions (greeting and EHLO, no TLS) so the TLS part
can be told from the session's own; each kind with a spoold of its own, as
memory freed is not given back to the system.

The bench's configuration raises what would refuse that many sessions from
one machine: max-connections (total and per address), rate-connections and
rate-tls (0: no limit).  Both processes need SESSIONS file descriptors and
some: the soft RLIMIT_NOFILE is raised to the hard one (see ulimit -Hn).

Usage: python3 bench/tls-sessions.py [--sessions N] [--sources N] [--parallel N]
"""
import argparse
import asyncio
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time

CERT_TEMPLATE = """cn = mx.test
dns_name = mx.test
ip_address = 127.0.0.1
expiration_days = 2
tls_www_server
signing_key
encryption_key
"""


def make_cert(d):
    """a self-signed ECDSA certificate, as tests/lib.sh make_cert makes it"""
    with open(d + "/cert.tmpl", "w") as f:
        f.write(CERT_TEMPLATE)
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", d + "/key.pem"],
                   check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", d + "/key.pem",
                    "--template", d + "/cert.tmpl", "--outfile", d + "/cert.pem"],
                   check=True, capture_output=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def start(spoold, d, sessions):
    conf = d + "/spoold.conf"
    with open(conf, "w") as f:
        f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\ndatadir %s/spool\n"
                "tls-cert %s/cert.pem\ntls-key %s/key.pem\n"
                "max-connections %d %d\nrate-connections 0\nrate-tls 0\n"
                "junk-command-limit 0\n" % (d, d, d, sessions + 100, sessions + 100))
    lf = d + "/listen"
    if os.path.exists(lf):
        os.unlink(lf)
    log = open(d + "/spoold.log", "a")
    p = subprocess.Popen([spoold, "-c", conf, "-f", "--listen-file", lf], stdout=log,
                         stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
    while not (os.path.exists(lf) and os.path.getsize(lf) > 0):
        if p.poll() is not None:
            sys.exit("spoold exited: see %s/spoold.log" % d)
        time.sleep(0.01)
    port = int(open(lf).read().split()[1].rsplit(":", 1)[1])
    return p, port


def status(pid, key):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # KiB
    return -1


async def reply(reader):
    """the last line of one (possibly multi-line) SMTP reply"""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if line[3:4] != b"-":
            return line


async def session(port, src, tls, ctx, sem):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
        await reply(reader)
        writer.write(b"EHLO client.test\r\n")
        await reply(reader)
        if tls:
            writer.write(b"STARTTLS\r\n")
            line = await reply(reader)
            if not line.startswith(b"220"):
                raise RuntimeError("STARTTLS: %r" % line)
            await writer.start_tls(ctx, server_hostname="mx.test")
            writer.write(b"EHLO client.test\r\n")
            line = await reply(reader)
            if not line.startswith(b"250"):
                raise RuntimeError("EHLO after STARTTLS: %r" % line)
        return writer


async def open_all(port, n, sources, tls, parallel):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(parallel)
    tasks = [session(port, "127.0.0.%d" % (2 + i % sources), tls, ctx, sem) for i in range(n)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    up = [w for w in results if not isinstance(w, BaseException)]
    errs = [r for r in results if isinstance(r, BaseException)]
    return up, errs


async def close_all(writers):
    for w in writers:
        w.transport.abort()
    await asyncio.sleep(0.5)


def measure(pid, port, n, sources, tls, parallel):
    before = status(pid, "RssAnon")
    t0 = time.time()
    up, errs = asyncio.run(run_and_hold(pid, port, n, sources, tls, parallel))
    took = time.time() - t0
    after, rss = up
    kind = "STARTTLS" if tls else "plain"
    per = (after - before) / max(1, n - len(errs))
    print("%-8s %d sessions up (%d failed%s) in %.1f s: RssAnon %d -> %d KiB (VmRSS %d KiB), "
          "%.1f KiB a session" % (kind, n - len(errs), len(errs),
                                  ": %r" % errs[0] if errs else "", took, before, after, rss, per))
    return per


async def run_and_hold(pid, port, n, sources, tls, parallel):
    up, errs = await open_all(port, n, sources, tls, parallel)
    await asyncio.sleep(1.0)  # let spoold settle (freed handshake buffers)
    after = status(pid, "RssAnon"), status(pid, "VmRSS")
    await close_all(up)
    return after, errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=20, help="127.0.0.2 ... 127.0.0.N+1")
    ap.add_argument("--parallel", type=int, default=200, help="handshakes under way at once")
    ap.add_argument("--spoold", default="spoold/spoold")
    a = ap.parse_args()
    limit = raise_nofile()
    if limit < a.sessions + 100:
        sys.exit("RLIMIT_NOFILE hard limit %d is too low for %d sessions" % (limit, a.sessions))
    d = tempfile.mkdtemp(prefix="spoold-tls.")
    make_cert(d)
    per = {}
    for tls in (False, True):  # a fresh spoold each: freed heap is not given back
        p, port = start(a.spoold, d, a.sessions)
        try:
            per[tls] = measure(p.pid, port, a.sessions, a.sources, tls, a.parallel)
        finally:
            p.terminate()
            p.wait()
    print("TLS adds %.1f KiB a session" % (per[True] - per[False]))
    print("log: %s/spoold.log; rm -rf %s when done" % (d, d))


if __name__ == "__main__":
    main()
