#!/usr/bin/env python3
"""bench/scale.py - one node at ISP scale (issue 14 point 6).

Configures DOMAINS domain blocks (default 100,000), queues PER messages
(default 100) for each of the first WITH_MAIL domains (default 10,000: a
million messages) with Postfix's smtp-source, then measures:
  * start-up: from exec to the listen file, with that spool and configuration;
  * ETRN replies: ETRN for SAMPLE random domains with mail (each starts a run
    that fails to connect, so the mail stays), the reply's round trip, on
    one connection: back to back, then SAMPLE others one every few ms
    (--etrn-gap);
  * spoolctl show of one domain, and of a domain with no mail;
  * spoold's anonymous RSS (RssAnon) after all that.

Usage: python3 bench/scale.py [--domains N] [--with-mail N] [--per N] [--sample N]
                              [--dir DIR]
With --dir, the spool is kept in DIR; a second run on the same DIR (and the
same sizes) skips the filling and measures again.
"""
import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

SINK_PORT = 9     # nothing listens: every run fails at connect, mail stays


def start(spoold, conf, d):
    lf = d + "/listen"
    if os.path.exists(lf):
        os.unlink(lf)
    log = open(d + "/spoold.log", "a")
    t0 = time.perf_counter()
    p = subprocess.Popen([spoold, "-c", conf, "-f", "--listen-file", lf],
                         stdout=log, stderr=subprocess.STDOUT)
    while not (os.path.exists(lf) and os.path.getsize(lf) > 0):
        if p.poll() is not None:
            sys.exit("spoold exited: see %s/spoold.log" % d)
        time.sleep(0.005)
    took = time.perf_counter() - t0
    port = int(open(lf).read().split()[1].rsplit(":", 1)[1])
    return p, port, took


def rss_anon(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) // 1024
    return -1


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=100000)
    ap.add_argument("--with-mail", type=int, default=10000)
    ap.add_argument("--per", type=int, default=100)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--spoold", default="spoold/spoold")
    ap.add_argument("--spoolctl", default="spoold/spoolctl")
    ap.add_argument("--smtp-source", default="/usr/sbin/smtp-source")
    ap.add_argument("--dir", help="keep the spool here; reuse it when filled already")
    ap.add_argument("--etrn-gap", type=float, default=0.003,
                    help="seconds between one ETRN's reply and the next in the second sample")
    ap.add_argument("--cold", action="store_true",
                    help="drop the spool file's pages from the page cache before measuring "
                    "(as after a reboot, or with a spool bigger than memory)")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="spoold-scale.")
    os.makedirs(d, exist_ok=True)
    filled = os.path.exists(d + "/filled")
    conf = d + "/spoold.conf"
    with open(conf, "w") as f:
        f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\ndatadir %s/spool\n"
                "max-spool-size 64G\nmax-connections 1000 1000\netrn-rate 1000000\n"
                "junk-command-limit 0\nrate-connections 0\n" % d)
        for i in range(a.domains):
            f.write("domain d%06d.example {\n    recipients any\n    etrn-from 127.0.0.0/8\n"
                    "    deliver-to [127.0.0.1]:%d\n    quota 10G 10000000\n}\n" % (i, SINK_PORT))
    n = a.with_mail * a.per
    if not filled:
        fill_spool(a, conf, d)
    measure(a, conf, d, n)


def fill_spool(a, conf, d):
    p, port, took = start(a.spoold, conf, d)
    print("empty spool, %d domains: ready in %.3f s" % (a.domains, took))

    t0 = time.time()

    def fill(i):
        subprocess.run([a.smtp_source, "-s", "5", "-m", str(a.per), "-l", "1024", "-f", "a@client.test",
                        "-t", "u@d%06d.example" % i, "127.0.0.1:%d" % port],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with ThreadPoolExecutor(max_workers=24) as ex:
        list(ex.map(fill, range(a.with_mail)))
    n = a.with_mail * a.per
    print("queued %d messages (1 KiB) over %d domains in %.0f s (%.0f msg/s)" %
          (n, a.with_mail, time.time() - t0, n / (time.time() - t0)))
    p.terminate()
    p.wait()
    open(d + "/filled", "w").close()


def drop_cache(path):
    """the file's clean pages out of the page cache (only this file's)"""
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def etrn_sample(port, doms, gap, per):
    """ETRN each of doms on one connection, gap seconds after each reply"""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO site.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    times, starts, codes, t0 = [], [], {}, time.perf_counter()
    for i in doms:
        t = time.perf_counter()
        s.sendall(b"ETRN d%06d.example\r\n" % i)
        line = f.readline()
        times.append(time.perf_counter() - t)
        starts.append(t - t0)
        codes[line[:3]] = codes.get(line[:3], 0) + 1
        time.sleep(gap)
    s.close()
    print("ETRN of %d domains with %d messages each, %s: median %.2f ms, p99 %.2f ms, max %.2f ms; "
          "replies %s" % (len(times), per, "%g ms apart" % (gap * 1000) if gap else "back to back",
                          pct(times, 0.5) * 1000, pct(times, 0.99) * 1000, max(times) * 1000,
                          {k.decode(): v for k, v in codes.items()}))
    # when the slowest came (from this sample's first ETRN): a cluster
    # points at one stall
    slow = sorted(range(len(times)), key=lambda k: -times[k])[:5]
    print("  slowest: " + ", ".join("%.1f ms at %.2f s" % (times[k] * 1000, starts[k])
                                   for k in sorted(slow)))


def measure(a, conf, d, n):
    if a.cold:
        drop_cache(d + "/spool/data.mdb")
    p, port, took = start(a.spoold, conf, d)
    print("restart with %d messages queued, %d domains%s: ready in %.3f s" %
          (n, a.domains, " (spool not in the page cache)" if a.cold else "", took))

    # two samples of other domains: back to back (what queues behind a
    # run's work), then one every --etrn-gap (spanning the scheduler's first
    # look, 1 s after the start)
    doms = random.sample(range(a.with_mail), min(2 * a.sample, a.with_mail))
    etrn_sample(port, doms[:len(doms) // 2], 0.0, a.per)
    etrn_sample(port, doms[len(doms) // 2:], a.etrn_gap, a.per)

    for dom in ("d%06d.example" % 0, "d%06d.example" % (a.domains - 1)):
        t = time.perf_counter()
        out = subprocess.run([a.spoolctl, "-c", conf, "show", dom], capture_output=True, text=True)
        print("spoolctl show %s: %.3f s, %d lines" % (dom, time.perf_counter() - t,
                                                     len(out.stdout.splitlines())))
    print("spoold RssAnon: %d MiB" % rss_anon(p.pid))
    p.terminate()
    p.wait()
    print("spool: %s (%.1f GiB on disk); rm -rf it when done" %
          (d, sum(os.path.getsize(os.path.join(d, "spool", x)) for x in os.listdir(d + "/spool")) / 2**30))


if __name__ == "__main__":
    main()
