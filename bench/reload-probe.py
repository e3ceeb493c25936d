#!/usr/bin/env python3
"""bench/reload-probe.py - how long a SIGHUP reload holds up sessions.

Starts spoold on a configuration of DOMAINS domain blocks (default 100000),
keeps one SMTP session busy with NOOP ping-pong (and a GET /metrics scrape
in between when --scrape is given), sends RELOADS SIGHUPs (default 5), and
prints the NOOP round-trip times: median, p99 and the worst, during the
reloads and outside them.  The issue's target: no session waits more than
10 ms during a reload of 100,000 domain blocks.

Usage: python3 bench/reload-probe.py [--domains N] [--reloads N] [--spoold PATH]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def write_conf(d, n, metrics):
    path = os.path.join(d, "spoold.conf")
    with open(path, "w") as f:
        f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\ndatadir %s/spool\n" % d)
        f.write("junk-command-limit 0\n")
        if metrics:
            f.write("metrics-listen 127.0.0.1:0\n")
        for i in range(n):
            f.write("domain d%06d.example {\n    recipients any\n    etrn-from 127.0.0.0/8\n}\n" % i)
    return path


def wait_listen(path, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            ports = {}
            for line in open(path):
                kind, addr = line.split()
                ports[kind] = int(addr.rsplit(":", 1)[1])
            return ports
        time.sleep(0.05)
    sys.exit("spoold did not start")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=100000)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--spoold", default="spoold/spoold")
    ap.add_argument("--scrape", action="store_true", help="also scrape /metrics now and then")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="spoold-reload.")
    conf = write_conf(d, a.domains, a.scrape)
    log = open(os.path.join(d, "spoold.log"), "w")
    t0 = time.time()
    p = subprocess.Popen([a.spoold, "-c", conf, "-f", "--listen-file", d + "/listen"],
                         stdout=log, stderr=subprocess.STDOUT)
    ports = wait_listen(d + "/listen")
    print("started on %d domains in %.2f s" % (a.domains, time.time() - t0))
    s = socket.create_connection(("127.0.0.1", ports["smtp"]))
    f = s.makefile("rb")
    f.readline()
    in_reload = threading.Event()
    stop = threading.Event()
    samples = []   # (seconds, during a reload)

    def ping():
        while not stop.is_set():
            t = time.perf_counter()
            s.sendall(b"NOOP\r\n")
            f.readline()
            samples.append((time.perf_counter() - t, in_reload.is_set()))
            time.sleep(0.001)
    th = threading.Thread(target=ping)
    th.start()
    time.sleep(1)
    for _ in range(a.reloads):
        before = open(d + "/spoold.log").read().count("reloaded:")
        in_reload.set()
        p.send_signal(signal.SIGHUP)
        t = time.time()
        while open(d + "/spoold.log").read().count("reloaded:") == before:
            if time.time() - t > 120:
                sys.exit("no 'reloaded:' line in 120 s")
            if a.scrape and "metrics" in ports:
                m = socket.create_connection(("127.0.0.1", ports["metrics"]))
                m.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                while m.recv(65536):
                    pass
                m.close()
            time.sleep(0.01)
        time.sleep(0.2)     # the old configuration's last reference goes
        in_reload.clear()
        print("reload took %.2f s" % (time.time() - t))
        time.sleep(0.5)
    stop.set()
    th.join()
    s.close()
    p.send_signal(signal.SIGTERM)
    p.wait()
    for label, flag in (("during reloads", True), ("otherwise", False)):
        xs = [x * 1000 for x, r in samples if r == flag]
        print("%-15s %6d NOOPs: median %.3f ms, p99 %.3f ms, max %.3f ms" %
              (label, len(xs), pct(xs, 0.5), pct(xs, 0.99), max(xs) if xs else 0))


if __name__ == "__main__":
    main()
