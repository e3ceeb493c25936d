#!/bin/sh
# quickstart.sh - build spoold and run it in the foreground on a demo
# configuration: SMTP on 127.0.0.1:2525, spool under ./run, domain example.test.
# (ODMR listens on 127.0.0.1:3366 too; AUTH needs a SASL user, made with
# saslpasswd2 as the README's ODMR section shows.)
set -eu
cd "$(dirname "$0")/.."

contrib/deps.sh demo
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"

mkdir -p run
if [ ! -f run/spoold.conf ]; then
	cat > run/spoold.conf <<CONF
# Demo configuration written by contrib/quickstart.sh; edit freely.
hostname        localhost
listen smtp     127.0.0.1:2525
listen odmr     127.0.0.1:3366
datadir         $(pwd)/run/spool
max-message-size 50M
max-spool-size  1G

domain example.test {
    mode       hold
    etrn-from  127.0.0.1
    # ETRN delivers here; nothing listens on this port in the demo, so a
    # run ends with "connection refused" in spoolctl show and the mail waits.
    deliver-to [127.0.0.1]:2626
    recipients any
}
CONF
	echo "quickstart: wrote run/spoold.conf"
fi
echo "quickstart: starting spoold (Ctrl-C stops it)"
exec spoold/spoold -c run/spoold.conf -f
