#!/usr/bin/env python3
"""bench/metrics-probe.py - what a Prometheus scrape costs and whether it
holds up mail.

Starts spoold with DOMAINS domain blocks (default 10000), queues one message
for each (so every domain has its series), then scrapes GET /metrics
SCRAPES times (default 20) back to back while one SMTP session does NOOP
ping-pong; prints the scrape's size and time (median, max) and the NOOP
round trips during the scrapes and before them.

Usage: python3 bench/metrics-probe.py [--domains N] [--scrapes N] [--spoold PATH]
"""
import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--spoold", default="spoold/spoold")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="spoold-metrics.")
    conf = os.path.join(d, "spoold.conf")
    with open(conf, "w") as f:
        f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\nmetrics-listen 127.0.0.1:0\n"
                "datadir %s/spool\njunk-command-limit 0\nmax-connections 100 100\n" % d)
        for i in range(a.domains):
            f.write("domain d%06d.example {\n    recipients any\n}\n" % i)
    log = open(os.path.join(d, "spoold.log"), "w")
    p = subprocess.Popen([a.spoold, "-c", conf, "-f", "--listen-file", d + "/listen"],
                         stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while not (os.path.exists(d + "/listen") and os.path.getsize(d + "/listen") > 0):
        if time.time() - t0 > 60:
            sys.exit("spoold did not start")
        time.sleep(0.05)
    ports = {l.split()[0]: int(l.split()[1].rsplit(":", 1)[1]) for l in open(d + "/listen")}

    def fill(lo, hi):
        s = smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=60)
        for i in range(lo, hi):
            s.sendmail("a@client.test", ["u@d%06d.example" % i], b"Subject: x\r\n\r\nbody\r\n")
        s.quit()
    t0 = time.time()
    step = (a.domains + 7) // 8
    th = [threading.Thread(target=fill, args=(i, min(i + step, a.domains)))
          for i in range(0, a.domains, step)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    print("queued %d messages, one per domain, in %.1f s" % (a.domains, time.time() - t0))

    s = socket.create_connection(("127.0.0.1", ports["smtp"]))
    f = s.makefile("rb")
    f.readline()
    busy = threading.Event()
    stop = threading.Event()
    samples = []

    def ping():
        while not stop.is_set():
            t = time.perf_counter()
            s.sendall(b"NOOP\r\n")
            f.readline()
            samples.append((time.perf_counter() - t, busy.is_set()))
            time.sleep(0.001)
    pt = threading.Thread(target=ping)
    pt.start()
    time.sleep(1)
    times, size = [], 0
    busy.set()
    for _ in range(a.scrapes):
        t = time.perf_counter()
        m = socket.create_connection(("127.0.0.1", ports["metrics"]))
        m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = m.recv(1 << 20)
            if not b:
                break
            data += b
        m.close()
        times.append(time.perf_counter() - t)
        size = len(data)
    busy.clear()
    time.sleep(0.5)
    stop.set()
    pt.join()
    p.terminate()
    p.wait()
    print("scrape: %d bytes, median %.1f ms, max %.1f ms" %
          (size, pct(times, 0.5) * 1000, max(times) * 1000))
    for label, flag in (("during scrapes", True), ("otherwise", False)):
        xs = [x * 1000 for x, b in samples if b == flag]
        print("%-15s %6d NOOPs: median %.3f ms, p99 %.3f ms, max %.3f ms" %
              (label, len(xs), pct(xs, 0.5), pct(xs, 0.99), max(xs) if xs else 0))


if __name__ == "__main__":
    main()
