#!/usr/bin/env python3
"""bench/cold-bodies.py - delivery of big bodies from a spool not in the page cache.

Queues MESSAGES (default 100) messages of 1 MB for big.example with Postfix's
smtp-source, stops spoold, drops the spool file's pages from the page cache
(as after a reboot), starts spoold again and a Postfix smtp-sink as the site,
sends ETRN and times until every message is logged as removed: how fast a
cold spool is read in order.  Run it against two builds, in turn, to compare
(the read-at-random window at the start, issue 14, must not slow this).

Usage: python3 bench/cold-bodies.py [--spoold PATH] [--messages N] [--dir DIR]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SINK_PORT = 29525


def start(spoold, conf, d):
    lf = d + "/listen"
    if os.path.exists(lf):
        os.unlink(lf)
    p = subprocess.Popen([spoold, "-c", conf, "-f", "--listen-file", lf],
                         stdout=open(d + "/log", "a"), stderr=subprocess.STDOUT)
    while not (os.path.exists(lf) and os.path.getsize(lf) > 0):
        if p.poll() is not None:
            sys.exit("spoold exited: see %s/log" % d)
        time.sleep(0.01)
    return p, int(open(lf).read().split()[1].rsplit(":", 1)[1])


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spoold", default="spoold/spoold")
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--smtp-source", default="/usr/sbin/smtp-source")
    ap.add_argument("--smtp-sink", default="/usr/sbin/smtp-sink")
    ap.add_argument("--dir", help="work here (emptied first) instead of a new temporary directory")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="spoold-cold-bodies.")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    conf = d + "/spoold.conf"
    with open(conf, "w") as f:
        f.write("hostname mx.test\nlisten smtp 127.0.0.1:0\ndatadir %s/spool\nmax-message-size 2M\n"
                "rate-connections 0\ndomain big.example {\n    recipients any\n"
                "    etrn-from 127.0.0.0/8\n    deliver-to [127.0.0.1]:%d\n}\n" % (d, SINK_PORT))
    p, port = start(a.spoold, conf, d)
    subprocess.run([a.smtp_source, "-s", "4", "-m", str(a.messages), "-l", "1000000", "-f", "a@x.test",
                    "-t", "u@big.example", "127.0.0.1:%d" % port], check=True)
    p.terminate()
    p.wait()
    drop_cache(d + "/spool/data.mdb")
    sink = subprocess.Popen([a.smtp_sink, "-u", "nobody", "127.0.0.1:%d" % SINK_PORT, "100"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    p, port = start(a.spoold, conf, d)
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    t0 = time.time()
    s.sendall(b"ETRN big.example\r\n")
    print(f.readline().strip().decode())
    done = True
    while open(d + "/log").read().count("removed") < a.messages:
        time.sleep(0.02)
        if time.time() - t0 > 120:
            done = False
            break
    took = time.time() - t0
    s.close()
    p.terminate()
    p.wait()
    sink.terminate()
    sink.wait()
    if not done:
        sys.exit("not all delivered within 120 s: see %s/log" % d)
    print("%s: %d messages of 1 MB delivered from a cold spool in %.2f s" % (a.spoold, a.messages, took))
    if not a.dir:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
