# rspamd-private.sh - a private, offline rspamd for tests and benchmarks:
# sourced, it defines
#   rspamd_private_config DIR MILTER_PORT [HTTP_PORT [WORKERS]]
#       writes DIR/rspamd.conf and its local.d: /etc/rspamd's rules, DIR as
#       LOCAL_CONFDIR, DBDIR and RUNDIR; a rspamd_proxy worker in milter mode
#       on 127.0.0.1:MILTER_PORT scanning itself (WORKERS processes, 1 by
#       default) and, with HTTP_PORT, a normal worker there for rspamc; DNS
#       pointed at a closed port and the modules that want the network,
#       Redis or state off; rspamd's headers on every message; Subject
#       SOFTREJECT-TEST gets the action "soft reject"
#   rspamd_private_run DIR   rspamd in the foreground (run it with &)
# Measured: starts in under a second with the few TLDs below (the public
# suffix list alone takes 20 s to compile).
rspamd_private_config() {
	R=$1
	_mport=$2
	_hport=${3:-}
	_workers=${4:-1}
	mkdir -p "$R/local.d" "$R/db" "$R/run"
	printf 'com\nnet\norg\ntest\n' >"$R/tld.dat"
	_normal=""
	[ -n "$_hport" ] && _normal="worker \"normal\" {
    bind_socket = \"127.0.0.1:$_hport\";
    count = $_workers;
}"
	cat >"$R/rspamd.conf" <<EOF
# private rspamd (tests/rspamd-private.sh)
.include "\$CONFDIR/common.conf"
options {
    pidfile = "$R/run/rspamd.pid";
    filters = "regexp";
    cache_file = "$R/db/symbols.cache";
    history_file = "$R/db/rspamd.history";
    control_socket = "$R/run/rspamd.sock mode=0600";
    explicit_modules = ["settings"];
    allow_raw_input = true;
    tempdir = "$R/run";
    url_tld = "$R/tld.dat";
    local_addrs = [];
    dns {
        nameserver = ["127.0.0.1:1"];
        timeout = 0.1s;
        retransmits = 1;
    }
}
logging {
    type = "file";
    filename = "$R/rspamd.log";
    level = "info";
}
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:$_mport";
    milter = yes;
    upstream "local" {
        default = yes;
        self_scan = yes;
    }
    timeout = 60s;
    count = $_workers;
}
$_normal
EOF
# modules that want the network, Redis or state: off
for _m in antivirus arc asn aws_s3 bimi clickhouse dcc dkim dkim_signing dmarc \
    elastic emails external_relay external_services fuzzy_check greylist \
    history_redis http_headers maillist metadata_exporter metric_exporter mid \
    mime_types mx_check neural p0f phishing ratelimit rbl replies reputation \
    rspamd_update spamassassin spamtrap spf surbl trie url_redirector whitelist; do
	echo 'enabled = false;' >"$R/local.d/$_m.conf"
done
# headers on every message, also those from 127.0.0.1 (local by default)
cat >"$R/local.d/milter_headers.conf" <<'EOF'
use = ["x-spamd-result", "x-rspamd-server", "x-rspamd-queue-id"];
skip_local = false;
skip_authenticated = false;
EOF
# Subject SOFTREJECT-TEST: action "soft reject"
cat >"$R/rspamd.local.lua" <<'EOF'
rspamd_config.SPOOLD_SOFTREJECT_TEST = {
  type = 'prefilter',
  priority = 10,
  callback = function(task)
    local subj = task:get_subject()
    if subj and subj:find('SOFTREJECT-TEST', 1, true) then
      task:set_pre_result('soft reject', 'spoold test: soft reject')
    end
  end,
}
EOF
}

rspamd_private_run() {
	exec rspamd -f -u root -g root -c "$1/rspamd.conf" --var "LOCAL_CONFDIR=$1" \
	    --var "DBDIR=$1/db" --var "RUNDIR=$1/run" --var "LOGDIR=$1"
}
