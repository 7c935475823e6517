#!/usr/bin/env bash
# services.sh - real mail servers for popferry's integration tests.
#
# Usage: scripts/services.sh install|start|stop|status
#
#   install  Debian packages (only the missing ones; systemd only for
#            systemd-analyze, which tests/service_unit.rs runs) and the unprivileged
#            system user popferry-test that owns every test mailbox.
#   start    (re)generate certificates and configs, start whatever is not
#            already running, wait for every port, write $DIR/env.
#            Idempotent: running services with unchanged config are kept.
#   stop     stop what start started - by recorded PID only, and only if
#            /proc/PID/cmdline still is the command line we launched.
#   status   show each service and its port.
#
# install/start/stop need root (user creation, Dovecot's privilege separation,
# smtp-sink's -u).  Nothing here touches the system Dovecot or Postfix: every
# daemon is a private instance with a generated config, bound to 127.0.0.1.
#
# State: $POPFERRY_TEST_DIR (default /var/tmp/popferry-test-<checksum of the
# repo path>: short enough for Dovecot's socket paths and reachable by the
# unprivileged mail user wherever the clone lives)
#   env                  `source` it: the POPFERRY_TEST_* variables below
#   tls/                 ca.pem ca.key (test CA), server.pem server.key
#   dovecot/             dovecot.conf, base/ (base_dir), state/ (state_dir)
#   mail/U/Maildir       mailbox of POP3 user U (owner popferry-test)
#   sink/accept/         one dump file per message accepted on the SMTP port
#   log/                 dovecot.log, dovecot-info.log (Dovecot's own logs),
#                        NAME.stderr (stdout/stderr of each service)
#   run/NAME.pid         PID of each service; run/NAME.cmdline the argv it
#                        was started with, run/NAME.ports its ports
#
# Ports (override by exporting the variable before `start`):
#   POPFERRY_TEST_POP3_PORT           21110  POP3, plain, offers STLS
#   POPFERRY_TEST_POP3S_PORT          21995  POP3 over implicit TLS
#   POPFERRY_TEST_SMTP_PORT           22525  smtp-sink, accepts and dumps
#   POPFERRY_TEST_SMTP_TEMPFAIL_PORT  22526  smtp-sink, 451 after the final "."
#   POPFERRY_TEST_SMTP_PERMFAIL_PORT  22527  smtp-sink, 554 after the final "."
#
# POP3 (Dovecot 2.3.19): ANY username logs in with password "pw" (passdb
# static); any other password gets "-ERR [AUTH] Authentication failed." within
# 0.5 s, and does not slow down later logins (see auth_failure_delay and the
# anvil-auth-penalty socket in the config).  Usernames are case-sensitive (no
# lowercasing) and limited to Dovecot's default characters [A-Za-z0-9.-_@].
# Mailboxes and SMTP dumps are emptied whenever Dovecot / the accepting sink
# is freshly started (not by stop: they stay for post-mortems until then).
# User U's mailbox is $POPFERRY_TEST_MAIL_ROOT/U/Maildir; Dovecot creates it
# on first login, or a test creates {cur,new,tmp} itself and chowns them to
# POPFERRY_TEST_MAIL_UID:POPFERRY_TEST_MAIL_GID (Dovecot runs as that user and
# must be able to write dovecot-uidlist and rename/unlink messages).
# Message files may use LF or CRLF line ends: Dovecot sends CRLF, and LIST /
# STAT sizes count CRLF.  On the first session it moves new/* to cur/*, and
# DELE + QUIT unlinks the file.
# UIDL = pop3_uidl_format %08Xu%08Xv: the message's IMAP UID then the
# mailbox's UIDVALIDITY, 8 hex digits each - LOWER-case in spite of the "X",
# e.g. "000000016b042487" for UID 1.  Stable across sessions.
#
# SMTP dump format (Postfix 3.7 smtp-sink -d; read from its source and
# checked with a real message): one file per accepted message, named
#   $POPFERRY_TEST_SMTP_DUMP_DIR/YYYYmmddHHMMSS.<8 hex digits>  (local time)
# owned by popferry-test, mode 0644, LF line endings throughout:
#   X-Client-Addr: 127.0.0.1
#   X-Client-Proto: ESMTP                  (SMTP after HELO)
#   X-Helo-Args: <EHLO/HELO argument>      (only if the client sent one)
#   X-Mail-Args: <everything after "MAIL FROM:", e.g. "<a@x> SIZE=123">
#   X-Rcpt-Args: <everything after "RCPT TO:">   (one line per RCPT, in order)
#   Received: from <helo> ([127.0.0.1])
#   <TAB>by popferry-test-accept (smtp-sink) with ESMTP id <8 hex>;
#   <TAB><RFC 2822 date>
#   <the message as received: dot-unstuffed, with EVERY CR byte removed>
#   <one extra LF: the one of the terminating ".\r\n">
# So the message is NOT stored byte-for-byte: CRLF becomes LF and a bare CR
# is dropped (a bare LF is kept); the leading "." of a line is removed (right
# dot-unstuffing, provided the client dot-stuffed).  To compare with an
# original: take what follows the second TAB line after "Received:", drop
# the last "\n", and compare with the original after removing every "\r".
# Literal example (cat -A style, "$" = end of line, "^I" = TAB), for
#   EHLO probe.local / MAIL FROM:<from@example.org> SIZE=98 / RCPT TO:x2 /
#   "Subject: probe\r\nFrom: from@example.org\r\n\r\nline1\r\n..leading dot\r\n
#    ...two dots\r\nbare\rCR and bare\nLF\r\n\r\n.\r\n":
#   X-Client-Addr: 127.0.0.1$
#   X-Client-Proto: ESMTP$
#   X-Helo-Args: probe.local$
#   X-Mail-Args: <from@example.org> SIZE=98$
#   X-Rcpt-Args: <to@example.org>$
#   X-Rcpt-Args: <second@example.org>$
#   Received: from probe.local ([127.0.0.1])$
#   ^Iby popferry-test-accept (smtp-sink) with ESMTP id 69bf32c0;$
#   ^IMon, 23 Nov 2026 11:33:29 +0000 (UTC)$
#   Subject: probe$
#   From: from@example.org$
#   $
#   line1$
#   .leading dot$
#   ..two dots$
#   bareCR and bare$
#   LF$
#   $
#   $
# Timing: smtp-sink creates the file at MAIL FROM (final name, no temp name)
# and closes it (write(2) done, no fsync) BEFORE it sends the 250 for the
# final "." - so once a client has seen that 250 the file is complete and
# readable.  A transaction that is aborted (RSET, disconnect) has its file
# unlinked.  Files of transactions still in flight (other tests running in
# parallel) may be seen half-written: find yours by its unique X-Rcpt-Args.
#
# Failing sinks: the message is transmitted in full, then the final "." gets
#   tempfail: "451 4.3.0 popferry test sink: try again later"   (-r . -b)
#   permfail: "554 5.6.0 popferry test sink: message rejected"  (-f . -B)
# MAIL, RCPT, DATA (354) all succeed before that; they dump nothing.  Note
# that -r/-f make smtp-sink stop announcing PIPELINING on those two ports;
# the accepting sink announces it (and handles pipelined commands).
# All sinks: -m 256 concurrent sessions, 100 s idle timeout.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$(realpath -m -- "${POPFERRY_TEST_DIR:-/var/tmp/popferry-test-$(cksum <<<"$REPO_ROOT" | cut -d" " -f1)}")

POP3_PORT=${POPFERRY_TEST_POP3_PORT:-21110}
POP3S_PORT=${POPFERRY_TEST_POP3S_PORT:-21995}
SMTP_PORT=${POPFERRY_TEST_SMTP_PORT:-22525}
SMTP_TEMPFAIL_PORT=${POPFERRY_TEST_SMTP_TEMPFAIL_PORT:-22526}
SMTP_PERMFAIL_PORT=${POPFERRY_TEST_SMTP_PERMFAIL_PORT:-22527}

MAIL_USER=popferry-test
PASSWORD=pw
PACKAGES=(dovecot-core dovecot-pop3d postfix openssl systemd)
DOVECOT=/usr/sbin/dovecot
SMTP_SINK=/usr/sbin/smtp-sink
SERVICES=(dovecot smtp-accept smtp-tempfail smtp-permfail)

RUN=$DIR/run
LOG=$DIR/log
TLS=$DIR/tls
MAIL_ROOT=$DIR/mail
DUMP_DIR=$DIR/sink/accept
DOVECOT_CONF=$DIR/dovecot/dovecot.conf

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
OWNER=services.sh
# shellcheck source=scripts/lib/daemons.sh
. "$REPO_ROOT/scripts/lib/daemons.sh"

need_root() {
    [[ $EUID -eq 0 ]] || die "'$1' must run as root (try: sudo $0 $1)"
}

# ---------------------------------------------------------------- install --

# Postfix's "No configuration" leaves the system MTA unconfigured, so its
# init script cannot start a system Postfix; we only want smtp-sink.
install_services() {
    echo "postfix postfix/main_mailer_type select No configuration" |
        debconf-set-selections
    install_packages "${PACKAGES[@]}"
    install_user
}

cmd_install() {
    need_root install
    install_services
    [[ -x $DOVECOT && -x $SMTP_SINK ]] || die "$DOVECOT or $SMTP_SINK missing after install"
}

# --------------------------------------------------------------- generate --

TLS_CHANGED=
gen_tls() {   # sets TLS_CHANGED=1 if the server certificate was (re)made
    mkdir -p "$TLS"
    chmod 755 "$TLS"
    if [[ ! -s $TLS/ca.pem || ! -s $TLS/ca.key ]]; then
        say "generating test CA"
        # rustls/webpki want a real CA: basicConstraints CA:TRUE + keyCertSign.
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -nodes -days 3650 -subj "/CN=popferry test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
        chmod 600 "$TLS/ca.key"
        chmod 644 "$TLS/ca.pem"
        rm -f "$TLS/server.pem"
    fi
    if [[ -s $TLS/server.pem && -s $TLS/server.key ]] &&
        openssl verify -CAfile "$TLS/ca.pem" "$TLS/server.pem" >/dev/null 2>&1 &&
        openssl x509 -in "$TLS/server.pem" -noout -checkend 86400 >/dev/null; then
        return 0
    fi
    say "generating server certificate (localhost, 127.0.0.1, ::1)"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    # End-entity extensions: not a CA, TLS server only, names it is valid for.
    cat >"$TLS/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -set_serial "0x$(openssl rand -hex 15)" -days 3650 \
        -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
    chmod 600 "$TLS/server.key"
    rm -f "$TLS/server.csr"
    TLS_CHANGED=1
}

gen_dovecot_conf() {   # writes $DOVECOT_CONF.new
    local uid=$1 gid=$2 dh=
    [[ -s /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$DOVECOT_CONF.new" <<EOF
# Generated by scripts/services.sh - private Dovecot for popferry's tests.
# Regenerated on every start; edits here are lost.
instance_name = popferry-test
base_dir = $DIR/dovecot/base
state_dir = $DIR/dovecot/state
log_path = $LOG/dovecot.log
info_log_path = $LOG/dovecot-info.log
auth_verbose = yes

protocols = pop3
listen = 127.0.0.1

ssl = yes
ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
$dh

# Tests log in with USER/PASS on the plain port too.
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-256
# Any username, password "$PASSWORD"; a wrong password fails.
passdb {
  driver = static
  args = password=$PASSWORD
}
# Every user maps to $MAIL_USER; home = mail root/<username>.
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$MAIL_ROOT/%u
}
first_valid_uid = $uid
first_valid_gid = $gid
# Keep the username as given (default %Lu would lowercase it and so put
# "User1"'s mail into .../user1).
auth_username_format = %u
# A failed login must not slow the tests down: 0 = no delay (default 2 s;
# 2.3.19 still answers a failure on its next 0.5 s tick) ...
auth_failure_delay = 0

mail_location = maildir:~/Maildir
# Stable UIDLs: IMAP UID + UIDVALIDITY, 8 hex digits each (the default, but
# tests rely on it, so it is spelled out).
pop3_uidl_format = %08Xu%08Xv
# Tests may open many sessions for one user from 127.0.0.1 (default: 10).
mail_max_userip_connections = 200

# Long-lived, pre-forked processes: logins are fast and ~20 parallel tests
# never wait for a fork.  Reusing pop3 processes is safe here because every
# user has the same uid.
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
  process_limit = 4
  client_limit = 256
}
service pop3 {
  service_count = 0
  process_min_avail = 2
  process_limit = 256
}
service auth {
  client_limit = 2048
}
service anvil {
  client_limit = 2048
  # ... and disable the per-IP auth penalty: after one failed login from
  # 127.0.0.1, Dovecot would delay the NEXT login from 127.0.0.1 - any user,
  # any test - by 2..15 s.  mode = 0 means "do not create this socket"; the
  # auth process then finds no penalty socket and switches the penalty off.
  # (login_trusted_networks does not help in 2.3.19: measured, 4 s.)
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

validate_ports() {
    local -A seen=()
    local v p
    for v in POP3_PORT POP3S_PORT SMTP_PORT SMTP_TEMPFAIL_PORT SMTP_PERMFAIL_PORT; do
        p=${!v}
        if ! [[ $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p > 65535)); then
            die "POPFERRY_TEST_$v=$p is not a TCP port"
        fi
        [[ -z ${seen[$p]:-} ]] || die "POPFERRY_TEST_$v and POPFERRY_TEST_${seen[$p]} are both $p"
        seen[$p]=$v
    done
}

# ------------------------------------------------------------------ start --

cmd_start() {
    need_root start
    validate_ports
    # start implies install (a no-op when everything is present).
    install_services
    local uid gid
    uid=$(id -u "$MAIL_USER")
    gid=$(id -g "$MAIL_USER")

    mkdir -p "$DIR" "$RUN" "$LOG" "$DIR/dovecot" "$MAIL_ROOT" "$DUMP_DIR"
    chmod 755 "$DIR" "$MAIL_ROOT" "$DIR/sink"
    chown "$uid:$gid" "$MAIL_ROOT" "$DUMP_DIR"
    # Dovecot's pop3 and smtp-sink run as $MAIL_USER: it must reach and
    # write these directories, which fails e.g. under a 0700 /root.
    local d
    for d in "$MAIL_ROOT" "$DUMP_DIR"; do
        setpriv --reuid="$uid" --regid="$gid" --clear-groups test -w "$d" -a -x "$d" ||
            die "user $MAIL_USER cannot write $d (a parent directory is not world-searchable?).
Set POPFERRY_TEST_DIR to a directory under e.g. /var/tmp."
    done
    # Unix sockets live in base_dir; their paths must stay under 108 bytes.
    ((${#DIR} <= 64)) || die "POPFERRY_TEST_DIR path too long for Dovecot's sockets (${#DIR} > 64 chars): $DIR"

    gen_tls

    # --- Dovecot
    gen_dovecot_conf "$uid" "$gid"
    doveconf -c "$DOVECOT_CONF.new" -n >/dev/null ||
        die "generated Dovecot config is invalid: $DOVECOT_CONF.new"
    if running_pid dovecot >/dev/null &&
        { [[ -n $TLS_CHANGED ]] || ! cmp -s "$DOVECOT_CONF.new" "$DOVECOT_CONF"; }; then
        say "Dovecot config or certificate changed: restarting"
        stop_service dovecot
    fi
    mv -f "$DOVECOT_CONF.new" "$DOVECOT_CONF"
    if ! running_pid dovecot >/dev/null; then
        # Start from an empty base_dir: a master.pid left by a killed
        # instance makes Dovecot refuse to start, and a stale
        # anvil-auth-penalty socket (see the config) would make the auth
        # process retry it for ~5 s, delaying every login meanwhile.
        rm -rf "$DIR/dovecot/base"
        # A fresh server starts with empty mailboxes: leftovers of an earlier
        # run (kept until now for post-mortems) must not leak into tests
        # that reuse a username.
        find "$MAIL_ROOT" -mindepth 1 -delete
        launch dovecot "$POP3_PORT=POPFERRY_TEST_POP3_PORT" "$POP3S_PORT=POPFERRY_TEST_POP3S_PORT" -- \
            "$DOVECOT" -F -c "$DOVECOT_CONF"
    fi

    # --- smtp-sink x3.  Common options: drop root for $MAIL_USER after
    # binding (-u), IPv4, up to 256 concurrent sessions (-m), 100 s idle
    # timeout, and no AUTH/XCLIENT/XFORWARD in the EHLO reply (-a -C -F):
    # smtp-sink would answer AUTH with a bogus "250", not 235.  EHLO then
    # offers PIPELINING (accepting sink only), 8BITMIME,
    # ENHANCEDSTATUSCODES, DSN.  smtp-sink has no STARTTLS: plain SMTP only.
    # -h names each sink in its banner, so a log shows which one answered.
    local common=(-u "$MAIL_USER" -4 -m 256 -t 100 -a -C -F)
    start_sink smtp-accept "$SMTP_PORT" POPFERRY_TEST_SMTP_PORT \
        "${common[@]}" -h popferry-test-accept -d "$DUMP_DIR/%Y%m%d%H%M%S."
    start_sink smtp-tempfail "$SMTP_TEMPFAIL_PORT" POPFERRY_TEST_SMTP_TEMPFAIL_PORT \
        "${common[@]}" -h popferry-test-tempfail \
        -r . -b "451 4.3.0 popferry test sink: try again later"
    start_sink smtp-permfail "$SMTP_PERMFAIL_PORT" POPFERRY_TEST_SMTP_PERMFAIL_PORT \
        "${common[@]}" -h popferry-test-permfail \
        -f . -B "554 5.6.0 popferry test sink: message rejected"

    write_env "$uid" "$gid"
    say "ready; source $DIR/env"
}

# start_sink NAME PORT VARNAME OPTIONS...: (re)start unless the same command
# line is already running.
start_sink() {
    local name=$1 port=$2 var=$3 pid
    shift 3
    local argv=("$SMTP_SINK" "$@" "127.0.0.1:$port" 256)
    if ! running_pid "$name" >/dev/null && [[ $name == smtp-accept ]]; then
        # Fresh sink, fresh dump dir (old dumps stay until the next start).
        find "$DUMP_DIR" -mindepth 1 -delete
    fi
    if pid=$(running_pid "$name"); then
        if cmdline_is "$pid" <(printf '%s\0' "${argv[@]}"); then
            port_open "$port" && return 0
        fi
        # Options or port changed: check a new port before stopping the old.
        tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "127.0.0.1:$port" ||
            ensure_port_free "$port" "$var"
        stop_service "$name"
    fi
    launch "$name" "$port=$var" -- "${argv[@]}"
}

write_env() {
    local uid=$1 gid=$2
    {
        echo "# Generated by scripts/services.sh start - source this file."
        local kv
        for kv in \
            "POPFERRY_TEST_DIR=$DIR" \
            "POPFERRY_TEST_POP3_PORT=$POP3_PORT" \
            "POPFERRY_TEST_POP3S_PORT=$POP3S_PORT" \
            "POPFERRY_TEST_POP3_PASSWORD=$PASSWORD" \
            "POPFERRY_TEST_CA_FILE=$TLS/ca.pem" \
            "POPFERRY_TEST_MAIL_ROOT=$MAIL_ROOT" \
            "POPFERRY_TEST_MAIL_UID=$uid" \
            "POPFERRY_TEST_MAIL_GID=$gid" \
            "POPFERRY_TEST_SMTP_PORT=$SMTP_PORT" \
            "POPFERRY_TEST_SMTP_DUMP_DIR=$DUMP_DIR" \
            "POPFERRY_TEST_SMTP_TEMPFAIL_PORT=$SMTP_TEMPFAIL_PORT" \
            "POPFERRY_TEST_SMTP_PERMFAIL_PORT=$SMTP_PERMFAIL_PORT"; do
            printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
        done
    } >"$DIR/env.new"
    chmod 644 "$DIR/env.new"
    mv -f "$DIR/env.new" "$DIR/env"
}

# ------------------------------------------------------------ stop/status --

cmd_stop() {
    need_root stop
    local i
    # Reverse start order: sinks first, Dovecot last.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        stop_service "${SERVICES[i]}"
    done
}

cmd_status() {
    local name pid port rc=0
    # Ports as last started (they may have been overridden then).
    if [[ -s $DIR/env ]]; then
        # shellcheck source=/dev/null
        . "$DIR/env"
        POP3_PORT=$POPFERRY_TEST_POP3_PORT POP3S_PORT=$POPFERRY_TEST_POP3S_PORT
        SMTP_PORT=$POPFERRY_TEST_SMTP_PORT SMTP_TEMPFAIL_PORT=$POPFERRY_TEST_SMTP_TEMPFAIL_PORT
        SMTP_PERMFAIL_PORT=$POPFERRY_TEST_SMTP_PERMFAIL_PORT
    fi
    for name in "${SERVICES[@]}"; do
        case $name in
        dovecot) port="$POP3_PORT,$POP3S_PORT" ;;
        smtp-accept) port=$SMTP_PORT ;;
        smtp-tempfail) port=$SMTP_TEMPFAIL_PORT ;;
        smtp-permfail) port=$SMTP_PERMFAIL_PORT ;;
        esac
        if pid=$(running_pid "$name"); then
            printf '%-14s running  pid %-7s 127.0.0.1:%s\n' "$name" "$pid" "$port"
        else
            printf '%-14s stopped\n' "$name"
            rc=3
        fi
    done
    [[ -s $DIR/env ]] && echo "env: $DIR/env"
    return $rc
}

case ${1:-} in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
