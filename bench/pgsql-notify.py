#!/usr/bin/env python3
"""bench/pgsql-notify.py - customers in PostgreSQL at ISP scale.

Starts a private PostgreSQL (initdb in a temp dir, run as nobody, a unix
socket only), fills a customers table with DOMAINS rows (default 100000),
starts spoold with "domains pgsql:" on it, and measures:
  - how long the first read of the rows takes (start to "N domains read"
    and to the reload that puts them in force);
  - for ADDS new rows (default 10), one after another, the time from the
    INSERT's commit (its trigger sends the NOTIFY) to the first 250 for
    the new domain: the issue's "within a second";
  - NOOP round trips of another session meanwhile (median, p99, max): what
    the reads and reloads cost the sessions.

Needs root (PostgreSQL runs as nobody), Debian's postgresql.
Usage: python3 bench/pgsql-notify.py [--domains N] [--adds N] [--spoold PATH]
"""
import argparse
import glob
import os
import re
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def asnobody(*cmd, **kw):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + list(cmd),
                          check=True, **kw)


def pg_start(d):
    pgbin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    pg = os.path.join(d, "pg")
    os.makedirs(pg)
    os.chmod(d, 0o711)
    shutil.chown(pg, "nobody", "nogroup")
    asnobody(pgbin + "/initdb", "-D", pg + "/data", "-U", "spoold", "--auth=trust", "--no-locale", "-E", "UTF8",
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(os.path.join(d, "postgres.log"), "w")
    proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                             pgbin + "/postgres", "-D", pg + "/data", "-k", pg, "-c", "listen_addresses=",
                             "-c", "fsync=off"], stdout=log, stderr=log)
    for _ in range(200):
        if subprocess.run(["pg_isready", "-q", "-h", pg, "-U", "spoold"]).returncode == 0:
            break
        time.sleep(0.05)
    return pgbin, pg, proc


def sql(pg, text, db="spoold"):
    subprocess.run(["psql", "-q", "-X", "-h", pg, "-U", "spoold", "-d", db, "-v", "ON_ERROR_STOP=1"],
                   input=text.encode(), check=True, stdout=subprocess.DEVNULL)


def noop_probe(port, stop, rtts):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return line
    reply()
    s.sendall(b"EHLO probe.test\r\n")
    reply()
    while not stop.is_set():
        t0 = time.monotonic()
        s.sendall(b"NOOP\r\n")
        reply()
        rtts.append(time.monotonic() - t0)
        time.sleep(0.001)
    s.close()


def rcpt_code(port, addr):
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.ehlo("client.test")
    s.mail("s@client.test")
    code = s.rcpt(addr)[0]
    s.quit()
    return code


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=100000)
    ap.add_argument("--adds", type=int, default=10)
    ap.add_argument("--spoold", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spoold", "spoold"))
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pgsql-notify.")
    pgbin, pg, pgproc = pg_start(d)
    spoold = None
    try:
        sql(pg, "CREATE DATABASE spoold", db="postgres")
        sql(pg, """
CREATE TABLE customers (name text PRIMARY KEY, etrn_ips text[], recipients text NOT NULL DEFAULT 'any');
INSERT INTO customers (name, etrn_ips)
    SELECT 'c' || i || '.example', ARRAY['192.0.2.' || (i % 250 + 1)] FROM generate_series(1, DOMAINS) AS i;
CREATE FUNCTION spoold_notify() RETURNS trigger AS $$
BEGIN PERFORM pg_notify('spoold_domains', ''); RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE TRIGGER spoold_notify AFTER INSERT OR UPDATE OR DELETE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION spoold_notify();
""".replace("DOMAINS", str(a.domains)))
        with open(os.path.join(d, "domains.cf"), "w") as f:
            f.write("hosts = unix:%s\nuser = spoold\ndbname = spoold\n"
                    "query = SELECT name AS domain, etrn_ips AS etrn_from, recipients FROM customers\n"
                    "notify = spoold_domains\n" % pg)
        with open(os.path.join(d, "spoold.conf"), "w") as f:
            f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\ndatadir %s/spool\njunk-command-limit 0\n"
                    "domains pgsql:%s/domains.cf\ndomain file.test {\n recipients any\n}\n" % (d, d))
        log = os.path.join(d, "spoold.log")
        t0 = time.monotonic()
        spoold = subprocess.Popen([a.spoold, "-f", "-c", d + "/spoold.conf", "--listen-file", d + "/listen"],
                                  stdout=open(log, "w"), stderr=subprocess.STDOUT)
        read_at = reload_at = None
        while time.monotonic() - t0 < 120 and reload_at is None:
            text = open(log).read()
            if read_at is None and re.search(r"\d+ rows read", text):
                read_at = time.monotonic() - t0
            m = re.search(r"reloaded: (\d+) domains \(parsed in ([0-9.]+) s", text)
            if m:
                reload_at = time.monotonic() - t0
                parsed = float(m.group(2))
            time.sleep(0.01)
        port = int(re.search(r"smtp 127\.0\.0\.1:(\d+)", open(d + "/listen").read()).group(1))
        print("rows: %d; first read %.2f s after start, in force %.2f s (reload parse %.2f s off the loop)"
              % (a.domains, read_at, reload_at, parsed))
        stop, rtts = threading.Event(), []
        probe = threading.Thread(target=noop_probe, args=(port, stop, rtts))
        probe.start()
        lat = []
        for i in range(a.adds):
            name = "new%d.example" % i
            t1 = time.monotonic()
            sql(pg, "INSERT INTO customers (name) VALUES ('%s')" % name)
            committed = time.monotonic()
            while rcpt_code(port, "x@" + name) != 250:
                if time.monotonic() - t1 > 30:
                    raise SystemExit("%s not accepted within 30 s" % name)
                time.sleep(0.005)
            lat.append(time.monotonic() - committed)
            time.sleep(0.5)
        stop.set()
        probe.join()
        print("INSERT commit -> 250 for the new domain, %d adds: median %.0f ms, max %.0f ms"
              % (len(lat), statistics.median(lat) * 1e3, max(lat) * 1e3))
        print("NOOP round trips meanwhile (%d): median %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(rtts), statistics.median(rtts) * 1e3, pct(rtts, 0.99) * 1e3, max(rtts) * 1e3))
        with open("/proc/%d/status" % spoold.pid) as f:
            rss = [l for l in f if l.startswith("RssAnon")][0].split()[1]
        print("spoold RssAnon: %d MiB" % (int(rss) // 1024))
        for l in open(log).read().splitlines():
            if "rows read" in l:
                read = l
            if "reloaded:" in l:
                reloaded = l
        print("the last change:", read.split(": ", 2)[2], "|", reloaded.split(": ", 1)[1])
    finally:
        if spoold is not None:
            spoold.terminate()
            spoold.wait()
        subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", pgbin + "/pg_ctl",
                        "-D", pg + "/data", "stop", "-m", "immediate"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        pgproc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
