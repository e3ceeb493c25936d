# bench/lib.sh -- helpers shared by bench/ingest.sh and bench/despool.sh.
# Sourced, not run.  The including script sets BENCH_NAME (for messages) and,
# before calling the Postfix helpers, T (temp dir), PFDIR (config_directory),
# PFQ (queue_directory), PFDATA (data_directory) and PF_RUNNING=0, and defines
# pf_write_config (called by pf_start with the SMTP port as its argument).

log() { printf '%s\n' "$*" >&2; }
die() { log "${BENCH_NAME:-bench}: error: $*"; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# need_postfix_tools: install Postfix if smtp-source/smtp-sink are missing, and
# check every tool the benchmarks use
need_postfix_tools() {
    if [[ ! -x /usr/sbin/postfix || ! -x /usr/sbin/smtp-source || ! -x /usr/sbin/smtp-sink ]]; then
        log "Postfix (postfix, smtp-source, smtp-sink) is not installed: installing it"
        echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >&2; } \
            || die "could not install postfix"
    fi
    export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
    local t
    for t in postfix postconf postsuper smtp-source smtp-sink timeout awk script "$@"; do
        command -v "$t" >/dev/null || die "$t not found"
    done
}

now() { date +%s.%N; }

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: print a TCP port on 127.0.0.1 that nothing listens on
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        port_open "$p" || { echo "$p"; return 0; }
    done
    die "no free TCP port found"
}

# wait_port PORT SECONDS [PID]: poll until the port accepts connections
wait_port() {
    local port=$1 secs=$2 pid=${3:-} deadline
    deadline=$(awk -v n="$(now)" -v s="$secs" 'BEGIN{printf "%.3f", n+s}')
    while ! port_open "$port"; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        if awk -v n="$(now)" -v d="$deadline" 'BEGIN{exit !(n>d)}'; then return 1; fi
        sleep 0.05
    done
}

stop_pid() {  # stop_pid PID NAME: TERM, wait up to 10 s, then KILL
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "  $name (pid $pid) did not exit 10 s after SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# spoold_wait_listen LISTENFILE PID: poll (up to 10 s) for the "smtp ADDR:PORT"
# line spoold writes with --listen-file; print the port, or return 1
spoold_wait_listen() {
    local lf=$1 pid=$2 i port=
    for i in $(seq 1 200); do
        if [[ -s $lf ]]; then
            port=$(awk '$1=="smtp" {n=split($2,a,":"); print a[n]; exit}' "$lf")
            [[ -n $port ]] && { echo "$port"; return 0; }
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- private Postfix

pf() {  # run the postfix command for the private instance, errors visible
    script -qec "postfix -c $(printf %q "$PFDIR") $*" /dev/null </dev/null | tr -d '\r'
    return "${PIPESTATUS[0]}"
}

pf_stop() {
    if [[ $PF_RUNNING == 1 ]]; then
        pf stop >/dev/null 2>&1 || true
        PF_RUNNING=0
    fi
    # belt and braces: a master still running from our queue dir
    if [[ -s $PFQ/pid/master.pid ]]; then
        local mp
        mp=$(awk '{print $1; exit}' "$PFQ/pid/master.pid")
        if [[ -n $mp ]] && kill -0 "$mp" 2>/dev/null \
            && grep -qs -- "$PFDIR" "/proc/$mp/cmdline" "/proc/$mp/environ" 2>/dev/null; then
            kill -TERM "$mp" 2>/dev/null || true
            sleep 1
            kill -KILL -- "-$mp" 2>/dev/null || true
        fi
    fi
}

pf_start() {  # pf_start PORT: fresh, empty instance (config from pf_write_config PORT)
    local port=$1 out
    pf_stop
    rm -rf "$PFQ" "$PFDATA"
    mkdir -p "$PFQ" "$PFDATA"
    chown postfix: "$PFDATA"
    pf_write_config "$port"
    : >"$T/postfix.log"
    if ! out=$(pf check 2>&1); then
        log "$out"; tail -n 20 "$T/postfix.log" >&2 || true
        die "postfix -c $PFDIR check failed"
    fi
    [[ -z $out ]] || log "$out"
    if ! out=$(pf start 2>&1); then
        log "$out"; tail -n 20 "$T/postfix.log" >&2 || true
        die "postfix -c $PFDIR start failed"
    fi
    PF_RUNNING=1
    if ! wait_port "$port" 10; then
        tail -n 20 "$T/postfix.log" >&2 || true
        die "Postfix does not listen on 127.0.0.1:$port 10 s after start"
    fi
}

# pf_master_cf PORT: the minimal master.cf of the private instances (no chroot,
# postlogd for maillog_file)
pf_master_cf() {
    sed "s/@PORT@/$1/" "$(dirname "${BASH_SOURCE[0]}")/../tests/postfix-master.cf"
}

# pf_main_common WHO - the part of main.cf both benchmarks' private Postfix
# instances share (needs PFQ, PFDATA, T)
pf_main_common() {
    cat <<EOF
# private Postfix instance written by $1
compatibility_level = 3.6
myhostname = postfix.bench.local
mydomain = bench.local
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = $PFQ
data_directory = $PFDATA
maillog_file = $T/postfix.log
maillog_file_prefixes = $T
EOF
}
