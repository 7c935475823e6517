# shellcheck shell=bash
# services.sh - the bench's servers: a private Dovecot, the SMTP/LMTP sink and
# the latency proxy, all on 127.0.0.1. Sourced by bench/run, not run.
#
# Same conventions as scripts/services.sh (the test servers): Debian's
# Dovecot with a generated config and its own base_dir, mail owned by an
# unprivileged system user, every process started with setsid, its PID and
# exact argv recorded, and stopped only if /proc/PID/cmdline still matches.
# Nothing here touches the system Dovecot or the test servers' ports.
#
# Expects: STATE (runtime folder), BENCH_LIB (this folder), PY, and the port
# variables POP3_PORT POP3S_PORT PROXY_PORT PROXYS_PORT SINK_PORT.

MAIL_USER=popferry-bench
MAILBOX_USER=bench          # the POP3 login
MAILBOX_PASS=pw
RUN=$STATE/run
LOG=$STATE/log
TLS=$STATE/tls
CA_FILE=$TLS/ca.pem
MAILDIR=$STATE/mail/$MAILBOX_USER/Maildir
SINK_LOG=$STATE/sink/messages.log
SERVICES=(dovecot sink proxy)   # start order; stopped in reverse

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install --

# install_packages PKG...: install the missing ones; apt-get update only then.
install_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || die "missing Debian packages ${missing[*]}; run as root to install them"
    say "installing Debian packages: ${missing[*]}"
    # As in scripts/services.sh: keep maintainer scripts from starting the
    # system daemons where the image does not already forbid it.
    local policy=/usr/sbin/policy-rc.d added='' rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
    fi
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || rc=$?
    [[ -z $added ]] || rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
}

install_user() {
    getent passwd "$MAIL_USER" >/dev/null && return 0
    say "creating system user $MAIL_USER (owns the bench mailbox)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$MAIL_USER"
}

# ------------------------------------------------------- process tracking --

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmdline_is() {   # cmdline_is PID FILE (through a pipe: /proc files claim size 0)
    # shellcheck disable=SC2002
    cat "/proc/$1/cmdline" 2>/dev/null | cmp -s - "$2"
}

running_pid() {   # running_pid NAME: prints the PID if it is ours and alive
    local pid
    [[ -s $RUN/$1.pid && -s $RUN/$1.cmdline ]] || return 1
    pid=$(<"$RUN/$1.pid")
    [[ $pid =~ ^[0-9]+$ ]] && cmdline_is "$pid" "$RUN/$1.cmdline" || return 1
    echo "$pid"
}

stop_service() {   # TERM, KILL after 5 s, then wait until its ports are free
    local name=$1 pid port ports=()
    if pid=$(running_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            cmdline_is "$pid" "$RUN/$name.cmdline" || break
            sleep 0.1
        done
        cmdline_is "$pid" "$RUN/$name.cmdline" && kill -KILL "$pid" 2>/dev/null
        [[ -s $RUN/$name.ports ]] && read -ra ports <"$RUN/$name.ports"
        for port in "${ports[@]}"; do
            for _ in $(seq 50); do port_open "$port" || break; sleep 0.1; done
        done
    fi
    rm -f "$RUN/$name.pid"
}

stop_services() {
    local i
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_service "${SERVICES[i]}"; done
}

# launch NAME PORT... -- ARGV...: start ARGV in its own session, record it,
# wait until every PORT accepts connections.
launch() {
    local name=$1 ports=() p pid
    shift
    while [[ $1 != -- ]]; do ports+=("$1"); shift; done
    shift
    for p in "${ports[@]}"; do
        port_open "$p" && die "127.0.0.1:$p is already in use by a process this bench did not start"
    done
    printf '%s\0' "$@" >"$RUN/$name.cmdline"
    echo "${ports[*]}" >"$RUN/$name.ports"
    setsid "$@" </dev/null >>"$LOG/$name.stderr" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN/$name.pid"
    for p in "${ports[@]}"; do
        for _ in $(seq 100); do
            port_open "$p" && continue 2
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        tail -n 20 "$LOG/$name.stderr" >&2
        [[ $name != dovecot ]] || tail -n 20 "$LOG/dovecot.log" >&2 2>/dev/null
        stop_service "$name"
        die "$name did not start listening on 127.0.0.1:$p (log: $LOG/$name.stderr)"
    done
}

# --------------------------------------------------------------- generate --

gen_tls() {   # a CA (rustls wants a real one) and a server cert for localhost
    [[ -s $TLS/server.pem && -s $TLS/server.key && -s $CA_FILE ]] &&
        openssl verify -CAfile "$CA_FILE" "$TLS/server.pem" >/dev/null 2>&1 &&
        openssl x509 -in "$TLS/server.pem" -noout -checkend 86400 >/dev/null && return 0
    mkdir -p "$TLS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 3650 -subj "/CN=popferry bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$TLS/ca.key" -out "$CA_FILE" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" \
        "subjectAltName = DNS:localhost, IP:127.0.0.1" >"$TLS/server.ext"
    openssl x509 -req -in "$TLS/server.csr" -CA "$CA_FILE" -CAkey "$TLS/ca.key" \
        -set_serial "0x$(openssl rand -hex 15)" -days 3650 \
        -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
    chmod 600 "$TLS/ca.key" "$TLS/server.key"
    chmod 644 "$CA_FILE" "$TLS/server.pem"
}

gen_dovecot_conf() {   # gen_dovecot_conf UID GID > dovecot.conf
    cat <<EOF
# Generated by bench/run on every start - the benchmark's private Dovecot.
instance_name = popferry-bench
base_dir = $STATE/dovecot/base
state_dir = $STATE/dovecot/state
log_path = $LOG/dovecot.log
info_log_path = $LOG/dovecot-info.log
protocols = pop3
listen = 127.0.0.1

ssl = yes
ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
ssl_dh = </usr/share/dovecot/dh.pem

disable_plaintext_auth = no
auth_mechanisms = plain login
# Static password: password hashing is not what is measured.
passdb {
  driver = static
  args = password=$MAILBOX_PASS
}
userdb {
  driver = static
  args = uid=$1 gid=$2 home=$STATE/mail/%u
}
first_valid_uid = $1
first_valid_gid = $2
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100

pop3_uidl_format = %08Xu%08Xv
# A plain POP3 server as ISPs run it, minus work that would only measure
# Dovecot: RETR does not rename files to set the Seen flag, and sizes come
# from the ,S=/W= parts of the file names (fill.py writes them as Dovecot's
# own delivery does).
pop3_no_flag_updates = yes
pop3_fast_size_lookups = yes

# Long-lived, pre-forked processes, so a login costs no fork (one uid for
# every user makes reusing pop3 processes safe).
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
}
service pop3 {
  service_count = 0
  process_min_avail = 2
}
service auth {
  client_limit = 2048
}
service anvil {
  # No per-IP auth penalty socket (see scripts/services.sh).
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

# ------------------------------------------------------------------ start --

start_services() {
    install_user
    local uid gid
    uid=$(id -u "$MAIL_USER")
    gid=$(id -g "$MAIL_USER")
    mkdir -p "$RUN" "$LOG" "$STATE/dovecot" "$STATE/sink" "$STATE/mail" "$STATE/tools"
    chmod 755 "$STATE" "$STATE/mail"
    # Dovecot's pop3 processes run as $MAIL_USER and must reach the mailbox.
    setpriv --reuid="$uid" --regid="$gid" --clear-groups test -x "$STATE/mail" ||
        die "$MAIL_USER cannot reach $STATE/mail; set POPFERRY_BENCH_DIR under /var/tmp"
    ((${#STATE} <= 64)) || die "POPFERRY_BENCH_DIR too long for Dovecot's sockets: $STATE"
    # Leftovers of a bench that was killed (still running our exact argv).
    stop_services
    gen_tls
    gen_dovecot_conf "$uid" "$gid" >"$STATE/dovecot/dovecot.conf"
    doveconf -c "$STATE/dovecot/dovecot.conf" -n >/dev/null ||
        die "generated Dovecot config is invalid: $STATE/dovecot/dovecot.conf"
    # A master.pid left by a killed instance would stop Dovecot from starting.
    rm -rf "$STATE/dovecot/base"
    rm -rf "$STATE/mail/$MAILBOX_USER"
    install -d -o "$uid" -g "$gid" "$STATE/mail/$MAILBOX_USER" "$MAILDIR"
    launch dovecot "$POP3_PORT" "$POP3S_PORT" -- \
        /usr/sbin/dovecot -F -c "$STATE/dovecot/dovecot.conf"
    : >"$SINK_LOG"
    launch sink "$SINK_PORT" -- "$PY" "$BENCH_LIB/sink.py" --port "$SINK_PORT" --log "$SINK_LOG"
    launch proxy "$PROXY_PORT" "$PROXYS_PORT" -- "$PY" "$BENCH_LIB/proxy.py" \
        --delay-ms "$PROXY_DELAY_MS" "$PROXY_PORT=$POP3_PORT" "$PROXYS_PORT=$POP3S_PORT"
}

# refill_mailbox COUNT SIZE EXPECTED: a brand-new mailbox (no index, no
# uidlist) holding COUNT fresh messages; Dovecot has indexed it on return.
refill_mailbox() {
    local owner
    owner="$(id -u "$MAIL_USER"):$(id -g "$MAIL_USER")"
    find "$MAILDIR" -mindepth 1 -delete
    install -d -o "${owner%:*}" -g "${owner#*:}" "$MAILDIR"/{new,cur,tmp}
    "$PY" "$BENCH_LIB/fill.py" --maildir "$MAILDIR" --count "$1" --size "$2" \
        --expected "$3" --owner "$owner"
    # The first session moves new/ to cur/ and builds the index: untimed.
    local stat
    stat=$(mailbox_stat) || die "cannot log in to the bench Dovecot"
    [[ ${stat%% *} == "$1" ]] || die "mailbox holds '$stat' after filling $1 messages"
}

mailbox_stat() {   # prints "<messages> <octets>"
    "$PY" "$BENCH_LIB/limit.py" stat --pop3-port "$POP3_PORT" \
        --user "$MAILBOX_USER" --password "$MAILBOX_PASS"
}
