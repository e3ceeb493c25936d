#!/usr/bin/python3
"""milter_test.py - a scriptable filter for the tests, with python3-milter
(libmilter itself): what it does to a message is chosen by its Subject, so
one running filter covers every verdict and change.

Usage: milter_test.py PORT PORTFILE
  listens on inet:PORT@127.0.0.1 (PORT 0 is not possible with libmilter:
  the test passes a free one) and writes "ready" to PORTFILE once running.

Subjects: reject, tempfail, reply (554 5.7.1 custom), discard, quarantine
(with an X-Test-Filter header too), addheader,
insheader, chgheader, delheader, replbody, addrcpt, "add-rcpts <a@b>,<c@d>",
delrcpt, chgfrom,
slow (sleeps 5 s at the end of the message), crash (exits mid-message);
anything else is accepted untouched.  A recipient whose local part is
"refused" gets 550 at RCPT.  Every callback is logged to stdout.
"""
import os
import sys
import time

import Milter


class TestMilter(Milter.Base):
    def __init__(self):
        self.subject = ""
        self.headers = []

    def log(self, *what):
        print(" ".join(str(w) for w in what), flush=True)

    def connect(self, hostname, family, hostaddr):
        self.log("connect", hostname, hostaddr, self.getsymval("{daemon_name}"))
        return Milter.CONTINUE

    def hello(self, name):
        self.log("helo", name)
        return Milter.CONTINUE

    def envfrom(self, f, *args):
        self.log("mail", f, "queue-id", self.getsymval("i"))
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        self.log("rcpt", to)
        if to.startswith("<slow@"):
            time.sleep(8)   # longer than spoold waits for a verdict at RCPT
        if to.startswith("<refused@"):
            self.setreply("550", "5.1.1", "refused by the test filter")
            return Milter.REJECT
        return Milter.CONTINUE

    def header(self, name, value):
        self.headers.append(name)
        if name.lower() == "subject":
            self.subject = value.strip()
        return Milter.CONTINUE

    def eoh(self):
        self.log("headers", ",".join(self.headers))
        return Milter.CONTINUE

    def body(self, chunk):
        return Milter.CONTINUE

    def eom(self):
        s = self.subject
        self.log("eom", s)
        if s == "reject":
            return Milter.REJECT
        if s == "tempfail":
            return Milter.TEMPFAIL
        if s == "reply":
            self.setreply("554", "5.7.1", "custom refusal from the test filter")
            return Milter.REJECT
        if s == "discard":
            return Milter.DISCARD
        if s == "quarantine":
            self.addheader("X-Test-Filter", "quarantined")
            self.quarantine("held by the test filter")
        if s == "addheader":
            self.addheader("X-Test-Filter", "scanned")
        if s == "insheader":
            self.addheader("X-Inserted", "at the top", 0)
        if s == "chgheader":
            self.chgheader("Subject", 1, "changed by the filter")
        if s == "delheader":
            self.chgheader("X-Remove-Me", 1, "")
        if s == "replbody":
            self.replacebody(b"cleansed by the test filter\r\n")
        if s == "addrcpt":
            self.addrcpt("<extra@site.test>")
            self.addrcpt("<outsider@elsewhere.test>")
        if s.startswith("add-rcpts "):     # "add-rcpts <a@b>,<c@d>"
            for rcpt in s[len("add-rcpts "):].split(","):
                self.addrcpt(rcpt.strip())
        if s == "delrcpt":
            self.delrcpt("<b@site.test>")
        if s == "chgfrom":
            self.chgfrom("<changed@sender.test>")
        if s == "slow":
            time.sleep(5)
        if s == "crash":
            os._exit(3)
        return Milter.ACCEPT


def main():
    port, ready = sys.argv[1], sys.argv[2]
    Milter.factory = TestMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY |
                     Milter.ADDRCPT | Milter.DELRCPT | Milter.CHGFROM |
                     Milter.QUARANTINE)
    with open(ready, "w") as f:
        f.write("ready\n")
    Milter.runmilter("spoold-test", "inet:%s@127.0.0.1" % port, 30)


if __name__ == "__main__":
    main()
