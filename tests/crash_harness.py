#!/usr/bin/env python3
"""crash_harness.py - SIGKILL spoold again and again under load, then prove
that nothing it acknowledged was lost.

usage: crash_harness.py --spoold PATH --spoolctl PATH --dir DIR [--kills N]
                        [--seed N] [--clients N] [--window N] [--mdb-stat PATH]

In DIR it writes a configuration and runs spoold with:
  crash.test   ETRN from 127.0.0.1, delivered into this harness's own sink
  expire.test  max-age 1s: mass expiry, each message bounced with a DSN
  dsn.test     where those DSNs are queued (the senders are s<N>@dsn.test);
               ETRN'd into the sink too, so every DSN can be read
Several client threads send messages without pause (each with a unique
Message-ID and an X-Digest header, the SHA-256 of its body; some bodies over
256 KiB, so they spill to a file while received), and write every message
spoold acknowledged with a 250 to a ledger. One thread sends ETRN for
crash.test and dsn.test all the time, so delivery runs are under way when the
kills come, and expiry passes with DSNs run by themselves.

Then N times: wait a random moment, SIGKILL spoold (every fifth time,
SIGSTOP first; while it is stopped, a spoolctl write that cannot finish shows
that it held the spool's writer lock), check that the environment opens
(mdb_stat), start spoold again on the same directory.

At the end the senders stop and spoold runs until crash.test, expire.test and
dsn.test are empty.  It passes when:
  - every acknowledged message to crash.test reached the sink, body intact
    (its digest matches, and matches the ledger);
  - every acknowledged message to expire.test has a DSN at the sink that
    names its Message-ID;
  - a message at the sink that was never acknowledged (cut off by a kill) is
    intact too;
  - duplicates (a second copy at the sink) are each reported; more than
    spoold's delivery-window (--window, default 16: how many deliveries a run
    may make before the earliest is on disk) per kill and delivery run in
    flight fails.  With --window 1 that is at most one per kill and run.
The last line is "N passed, N failed" over those checks.
"""

import argparse
import hashlib
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time


def log(msg):
    print("crash: %s" % msg, flush=True)


# ---- the site's MTA: a minimal SMTP sink that keeps what it got ----

class Sink:
    """Accepts every message and keeps (sender, recipients, text).  Replies
    250 to the dot only once the message is kept, like a real MTA."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        c.settimeout(60)
        f = c.makefile("rb")
        try:
            c.sendall(b"220 sink.test ESMTP\r\n")
            sender, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                    c.sendall(b"250-sink.test\r\n250 8BITMIME\r\n")
                elif cmd.startswith(b"MAIL FROM:"):
                    m = re.search(rb"<([^>]*)>", line)
                    sender, rcpts = (m.group(1) if m else line), []
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif cmd.startswith(b"RCPT TO:"):
                    rcpts.append(line.strip()[8:])
                    c.sendall(b"250 2.1.5 ok\r\n")
                elif cmd == b"DATA":
                    c.sendall(b"354 go\r\n")
                    text = self.read_data(f)
                    if text is None:
                        return
                    with self.lock:
                        self.messages.append((sender, rcpts, text))
                    c.sendall(b"250 2.0.0 kept\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            c.close()

    @staticmethod
    def read_data(f):
        lines = []
        while True:
            line = f.readline()
            if not line:
                return None		# cut off: never acknowledged
            if line == b".\r\n":
                return b"".join(lines)
            if line.startswith(b".."):
                line = line[1:]
            lines.append(line)

    def snapshot(self):
        with self.lock:
            return list(self.messages)


# ---- spoold under test ----

class Spoold:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.conf = os.path.join(self.dir, "spoold.conf")
        self.listen = os.path.join(self.dir, "listen")
        self.logf = open(os.path.join(self.dir, "spoold.log"), "ab")
        self.proc = None
        self.port = None

    def write_conf(self, sink_port, window):
        with open(self.conf, "w") as f:
            f.write("""hostname mx.test
listen smtp 127.0.0.1:0
datadir %s/spool
max-connections 1000 1000
etrn-rate 100000
rate-tls 0
junk-command-limit 0
delivery-window %d
domain crash.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:%d
    recipients any
}
domain expire.test {
    max-age    1s
    recipients any
}
domain dsn.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:%d
    recipients any
}
""" % (self.dir, window, sink_port, sink_port))

    def start(self):
        try:
            os.unlink(self.listen)
        except FileNotFoundError:
            pass
        self.logf.write(b"==== spoold started %.3f\n" % time.time())
        self.logf.flush()
        self.proc = subprocess.Popen([self.args.spoold, "-c", self.conf, "-f", "--listen-file", self.listen],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("crash: spoold exited with %d at start (see %s/spoold.log)"
                                 % (self.proc.returncode, self.dir))
            try:
                m = re.search(r"^smtp 127\.0\.0\.1:(\d+)$", open(self.listen).read(), re.M)
                if m:
                    self.port = int(m.group(1))
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        raise SystemExit("crash: spoold wrote no listen file in 20 s")

    def kill(self, stop_first=False):
        """SIGKILL; with stop_first, SIGSTOP first and report whether it held
        the writer lock at that moment"""
        held = None
        if stop_first:
            self.proc.send_signal(signal.SIGSTOP)
            held = self.writer_lock_held()
        self.port = None
        self.proc.kill()
        self.proc.wait()
        return held

    def writer_lock_held(self):
        """a spoolctl write (hold, then release, of a domain nobody uses)
        that cannot finish within 1 s: the stopped spoold holds the lock"""
        p = subprocess.Popen([self.args.spoolctl, "-c", self.conf, "hold", "crash.test"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(1.0)
            self.ctl("release", "crash.test")
            return False
        except subprocess.TimeoutExpired:
            self.probe = p		# finishes once the lock's owner is dead
            return True

    def ctl(self, *argv):
        return subprocess.run([self.args.spoolctl, "-c", self.conf] + list(argv),
                              capture_output=True, text=True, timeout=60)

    def count(self, domain):
        out = self.ctl("list").stdout
        for line in out.splitlines():
            f = line.split()
            if f and f[0] == domain:
                return int(f[1])
        return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


# ---- load: senders and ETRNs ----

class Load:
    def __init__(self, spoold, clients, rng):
        self.spoold = spoold
        self.clients = clients
        self.rng = rng
        self.stopping = False
        self.lock = threading.Lock()
        self.acked = {}		# Message-ID -> (domain, digest)
        self.sent = {}		# Message-ID -> digest, acknowledged or not
        self.errors = []
        self.threads = []

    def body(self, n, i, size):
        filler = ("thread %d message %d " % (n, i)).encode()
        lines = []
        left = size
        while left > 0:
            lines.append((filler * 4)[:76] + b"\r\n")
            left -= 78
        if i % 7 == 0:
            lines.append(b".a line that needs dot-stuffing\r\n")
        return b"".join(lines)

    def message(self, n, i, domain):
        size = (1000, 20000, 300000)[i % 3] if n % 2 == 0 else 2000
        body = self.body(n, i, size)
        digest = hashlib.sha256(body).hexdigest()
        mid = "<crash-%d-%d-%d@harness.test>" % (os.getpid(), n, i)
        text = ("From: s%d@dsn.test\r\nTo: u%d@%s\r\nMessage-ID: %s\r\nSubject: crash %d %d\r\n"
                "X-Digest: %s\r\n\r\n" % (n, i, domain, mid, n, i, digest)).encode() + body
        return mid, digest, text

    def connect(self, helo):
        """an SMTP session with the spoold of the moment (None while it is
        being restarted)"""
        port = self.spoold.port
        if port is None:
            time.sleep(0.05)
            return None
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.ehlo(helo)
        return s

    def sender(self, n):
        i = 0
        while not self.stopping:
            try:
                s = self.connect("sender%d.test" % n)
                while s is not None and not self.stopping:
                    i += 1
                    domain = "crash.test" if i % 2 else "expire.test"
                    mid, digest, text = self.message(n, i, domain)
                    with self.lock:
                        self.sent[mid] = digest
                    s.mail("s%d@dsn.test" % n)
                    s.rcpt("u%d@%s" % (i, domain))
                    code, msg = s.data(text)
                    if code != 250:
                        with self.lock:
                            self.errors.append("sender %d: DATA got %d %r" % (n, code, msg))
                        break
                    with self.lock:
                        self.acked[mid] = (domain, digest)
                if s is not None:
                    s.quit()
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)	# spoold was killed: try again

    def etrner(self):
        while not self.stopping:
            try:
                s = self.connect("site.test")
                while s is not None and not self.stopping:
                    for node in ("crash.test", "dsn.test"):
                        code, msg = s.docmd("ETRN", node)
                        if code not in (250, 251, 252, 253):
                            raise smtplib.SMTPException("ETRN %s: %d %r" % (node, code, msg))
                    time.sleep(0.2)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)

    def start(self):
        for n in range(self.clients):
            self.threads.append(threading.Thread(target=self.sender, args=(n,), daemon=True))
        self.threads.append(threading.Thread(target=self.etrner, daemon=True))
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(60)


# ---- the checks ----

def parse_delivered(text):
    """(Message-ID, X-Digest, digest of the body as received) of a message at
    the sink"""
    head, _, body = text.partition(b"\r\n\r\n")
    mid = re.search(rb"^Message-ID: (<[^>]+>)", head, re.M)
    dig = re.search(rb"^X-Digest: ([0-9a-f]{64})", head, re.M)
    return (mid.group(1).decode() if mid else None, dig.group(1).decode() if dig else None,
            hashlib.sha256(body).hexdigest())


class Verdict:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            log("ok: " + what)
        else:
            self.failed += 1
            log("FAIL: " + what)


def verify(load, sink, kills, runs_in_flight, window):
    v = Verdict()
    delivered = {}		# Message-ID -> [(digest header, digest of body)]
    dsn_for = {}		# original Message-ID -> number of DSNs naming it
    strays = 0
    for sender, rcpts, text in sink.snapshot():
        if sender == b"":		# <>: a DSN
            for mid in set(re.findall(rb"<crash-[0-9]+-[0-9]+-[0-9]+@harness\.test>", text)):
                dsn_for[mid.decode()] = dsn_for.get(mid.decode(), 0) + 1
            continue
        mid, hdr, got = parse_delivered(text)
        if mid is None:
            strays += 1
            continue
        delivered.setdefault(mid, []).append((hdr, got))

    crash = {m: d for m, (dom, d) in load.acked.items() if dom == "crash.test"}
    expire = {m for m, (dom, d) in load.acked.items() if dom == "expire.test"}
    lost = sorted(m for m in crash if m not in delivered)
    v.check(not lost, "%d acknowledged messages to crash.test, %d lost%s"
            % (len(crash), len(lost), (": " + " ".join(lost[:10])) if lost else ""))
    bad = sorted(m for m, copies in delivered.items()
                 if any(h != g or h != load.sent.get(m) for h, g in copies))
    v.check(not bad, "%d distinct messages at the sink, %d with a body that does not match its digest%s"
            % (len(delivered), len(bad), (": " + " ".join(bad[:10])) if bad else ""))
    # not a check: a message whose 250 a kill cut off may or may not be kept
    # (its body was checked above like any other)
    unacked = [m for m in delivered if m not in load.acked]
    log("%d messages at the sink were cut off before their 250 reached the client (kept: at least once)"
        % len(unacked))
    no_dsn = sorted(m for m in expire if m not in dsn_for)
    v.check(not no_dsn, "%d acknowledged messages to expire.test, %d without a DSN%s"
            % (len(expire), len(no_dsn), (": " + " ".join(no_dsn[:10])) if no_dsn else ""))
    v.check(strays == 0, "%d messages at the sink that are neither ours nor DSNs" % strays)

    dups = {m: len(c) - 1 for m, c in delivered.items() if len(c) > 1}
    dsn_dups = {m: n - 1 for m, n in dsn_for.items() if n > 1}
    for m, n in sorted(dups.items()):
        log("duplicate: %s delivered %d times" % (m, n + 1))
    for m, n in sorted(dsn_dups.items()):
        log("duplicate: %d DSNs for %s" % (n + 1, m))
    total = sum(dups.values()) + sum(dsn_dups.values())
    bound = kills * runs_in_flight * window
    v.check(total <= bound, "%d duplicates after %d kills, %.1f a kill (at most %d: %d per kill and "
            "delivery run in flight)" % (total, kills, total / max(kills, 1), bound, window))
    return v


def lifetimes(path, kills):
    """from spoold's log: how many of the lives that ended in a kill had
    delivered (status=sent), expired (status=expired) and, on the same
    tick as the kill, still been doing so in its last second"""
    lives, cur = [], None
    for line in open(path, "rb"):
        if line.startswith(b"==== spoold started"):
            cur = {"sent": 0, "expired": 0}
            lives.append(cur)
        elif cur is not None:
            if b" status=sent " in line:
                cur["sent"] += 1
            elif b" status=expired " in line:
                cur["expired"] += 1
    killed = lives[:kills]
    return (sum(1 for l in killed if l["sent"]), sum(1 for l in killed if l["expired"]), len(killed))


def mdb_ok(args):
    if not args.mdb_stat:
        return True, "mdb_stat not given"
    p = subprocess.run([args.mdb_stat, "-e", os.path.join(args.dir, "spool")],
                       capture_output=True, text=True, timeout=60)
    return p.returncode == 0, (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spoold", required=True)
    ap.add_argument("--spoolctl", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--mdb-stat", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    log("seed %d, %d kills, %d clients, delivery-window %d" % (seed, args.kills, args.clients, args.window))

    sink = Sink()
    sp = Spoold(args)
    sp.write_conf(sink.port, args.window)
    sp.start()
    load = Load(sp, args.clients, rng)
    load.start()
    started = time.monotonic()
    stopped_with_lock = 0
    opened = 0
    try:
        for k in range(1, args.kills + 1):
            # past 1 s, spoold's first expiry pass has run (it looks once a second)
            time.sleep(rng.uniform(0.3, 2.5))
            held = sp.kill(stop_first=(k % 5 == 0))
            if held:
                stopped_with_lock += 1
            ok, why = mdb_ok(args)
            if not ok:
                raise SystemExit("crash: after kill %d the spool does not open: %s" % (k, why))
            opened += 1
            probe = getattr(sp, "probe", None)
            if probe is not None:
                probe.wait(30)		# the waiting spoolctl got the lock
                sp.ctl("release", "crash.test")
                sp.probe = None
            sp.start()
            with load.lock:
                acked = len(load.acked)
            log("kill %d%s: %d acknowledged so far, spool opens, restarted"
                % (k, " (SIGSTOP first%s)" % (", writer lock held" if held else "") if held is not None else "",
                   acked))
        load.stop()
        log("load stopped after %.0f s: %d messages acknowledged, %d sent" %
            (time.monotonic() - started, len(load.acked), len(load.sent)))
        # drain: ETRN until nothing is left (expiry needs max-age to pass)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = {d: sp.count(d) for d in ("crash.test", "expire.test", "dsn.test")}
            if not any(left.values()):
                break
            try:
                s = smtplib.SMTP("127.0.0.1", sp.port, timeout=30)
                s.ehlo("site.test")
                s.docmd("ETRN", "crash.test")
                s.docmd("ETRN", "dsn.test")
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass
            time.sleep(1)
        log("left in the spool at the end: %s" % left)
    finally:
        sp.stop()
    for e in load.errors:
        log("sender error: " + e)
    v = verify(load, sink, args.kills, 2, args.window)
    v.check(not any(left.values()), "the spool drained after the last restart: %s" % left)
    v.check(not load.errors, "%d sender errors (a 4xx/5xx after DATA)" % len(load.errors))
    v.check(opened == args.kills, "the spool opened cleanly (mdb_stat) after each of %d kills" % args.kills)
    sent, expired, n = lifetimes(os.path.join(args.dir, "spoold.log"), args.kills)
    log("of the %d lives of spoold that ended in a kill, %d delivered to the sink and %d expired "
        "mail with DSNs" % (n, sent, expired))
    if args.kills >= 5:
        log("SIGSTOP then SIGKILL: %d of %d times spoold held the writer lock" %
            (stopped_with_lock, args.kills // 5))
    print("%d passed, %d failed" % (v.passed, v.failed), flush=True)
    sys.exit(1 if v.failed else 0)


if __name__ == "__main__":
    main()
