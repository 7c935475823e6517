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
# smtp-sink's -u, Postfix).  Nothing here touches the system Dovecot or
# Postfix (/etc/dovecot, /etc/postfix): every daemon is a private instance
# with a generated config, bound to 127.0.0.1.  A start with nothing to
# change takes ~3 s (1.5 s of it apt-cache, see interop_pop3.sh), from
# stopped ~5 s, the very first ~35 s (keys, certificates, fetching and
# unpacking packages); a stop ~5 s (each Dovecot takes ~1 s to exit).
#
# The servers:
#   dovecot          POP3 for most tests; certificate from the test CA.  Any
#                    user, password "pw"; SASL PLAIN LOGIN CRAM-MD5
#                    SCRAM-SHA-256 (details below).
#   smtp-accept, smtp-tempfail, smtp-permfail
#                    smtp-sink receivers (details below).
#   dovecot-oauth    POP3 with XOAUTH2 / OAUTHBEARER: bearer tokens are
#                    HS256 JWTs checked locally; plus the same password
#                    mechanisms; certificate tls/selfsigned.pem, made as
#                    `openssl req -x509` makes it (CA:TRUE).
#   dovecot-cert     POP3S that requires a client certificate (client CA
#                    tls/client-ca.pem); server certificate from the test CA.
#   postfix          submission (STARTTLS) and submissions (implicit TLS),
#                    SASL through dovecot-oauth, relaying only after AUTH,
#                    to the smtp-submission sink (dump mode).
#   Facts about these last four: scripts/lib/dovecot.sh,
#   scripts/lib/postfix.sh, scripts/lib/lab_tls.sh (certificates, JWT key).
#   mailutils, courier, cyrus, popa3d
#                    more POP3 servers for the interop tests: their ports,
#                    users and mail drops are in scripts/lib/interop_pop3.sh.
#   dovecot-lmtp, postfix-mta, exim, aiosmtpd
#                    the receivers of the interop suite: Dovecot LMTP, a
#                    full Postfix smtpd, Exim and a scripted aiosmtpd, with
#                    per-recipient refusals.  Their ports (POPFERRY_TEST_*
#                    _PORT, 25524-25531), recipients and env variables:
#                    scripts/lib/interop_mta.sh.
#   prometheus       scrapes popferry's /metrics on POPFERRY_TEST_METRICS_PORT
#                    (24591) every second; its API on 24590
#                    (scripts/lib/prometheus.sh).
#   postgres         a private PostgreSQL cluster for the PostgreSQL ledger
#                    on POPFERRY_TEST_PG_PORT (25432), TLS with the test CA,
#                    role and database popferry; its variables and commands
#                    (POPFERRY_TEST_PG_*) in scripts/lib/postgres.sh.
#
# State: $POPFERRY_TEST_DIR (default /var/tmp/popferry-test-<checksum of the
# repo path>: short enough for Dovecot's socket paths and reachable by the
# unprivileged mail user wherever the clone lives)
#   env                  `source` it: the POPFERRY_TEST_* variables below
#   tls/                 ca.pem ca.key (test CA), server.pem server.key,
#                        selfsigned.pem/.key, client-ca.pem/.key,
#                        client.pem/.key (see scripts/lib/lab_tls.sh)
#   jwt/AZP/HS256/KID    the HS256 JWT key, one line of base64
#   dovecot/, dovecot-oauth/, dovecot-cert/
#                        dovecot.conf, base/ (base_dir), state/ (state_dir)
#   mail/U/Maildir       mailbox of POP3 user U (owner popferry-test)
#   mail-oauth/U/Maildir the same for dovecot-oauth and dovecot-cert
#   postfix/             etc/ (main.cf, master.cf), queue/, data/
#   sink/accept/         one dump file per message accepted on the SMTP port
#   sink/submission/     one dump file per message Postfix relayed
#   log/                 NAME.log, NAME-info.log (the own logs of Dovecot
#                        instance NAME), postfix.log, NAME.stderr
#                        (stdout/stderr of each service)
#   run/NAME.pid         PID of each service; run/NAME.cmdline the argv it
#                        was started with, run/NAME.ports its ports
#
# Ports (override by exporting the variable before `start`; scripts/test.sh
# runs bench/run while these are up, and it takes 24110, 24111, 24525, 24526,
# 24995 and 24996, so keep clear of those):
#   POPFERRY_TEST_POP3_PORT           21110  POP3, plain, offers STLS
#   POPFERRY_TEST_POP3S_PORT          21995  POP3 over implicit TLS
#   POPFERRY_TEST_SMTP_PORT           22525  smtp-sink, accepts and dumps
#   POPFERRY_TEST_SMTP_TEMPFAIL_PORT  22526  smtp-sink, 451 after the final "."
#   POPFERRY_TEST_SMTP_PERMFAIL_PORT  22527  smtp-sink, 554 after the final "."
#   POPFERRY_TEST_OAUTH_POP3_PORT       23110  dovecot-oauth POP3, offers STLS
#   POPFERRY_TEST_OAUTH_POP3S_PORT      23995  dovecot-oauth POP3S
#   POPFERRY_TEST_OAUTH_AUTH_PORT       23124  dovecot-oauth's auth service
#                                              (Dovecot SASL, for Postfix)
#   POPFERRY_TEST_CLIENTCERT_POP3S_PORT 23996  dovecot-cert POP3S
#   POPFERRY_TEST_SUBMISSION_PORT       23587  Postfix submission, STARTTLS
#   POPFERRY_TEST_SUBMISSIONS_PORT      23465  Postfix submissions, implicit TLS
#   POPFERRY_TEST_SUBMISSION_SINK_PORT  23525  smtp-sink behind Postfix
#
# Other variables in env: POPFERRY_TEST_DIR, POPFERRY_TEST_POP3_PASSWORD
# ("pw", every instance), POPFERRY_TEST_CA_FILE (tls/ca.pem),
# POPFERRY_TEST_MAIL_ROOT, POPFERRY_TEST_MAIL_UID/GID, POPFERRY_TEST_SMTP_DUMP_DIR,
# POPFERRY_TEST_OAUTH_MAIL_ROOT (mail-oauth/; the same rules as MAIL_ROOT),
# POPFERRY_TEST_SELFSIGNED_CERT (tls/selfsigned.pem),
# POPFERRY_TEST_JWT_KEY_FILE, POPFERRY_TEST_JWT_ISSUER
# (https://idp.popferry.test: the iss Dovecot requires),
# POPFERRY_TEST_JWT_AZP (popferry-test) and POPFERRY_TEST_JWT_KID (lab1):
# the azp claim and kid header that select the key,
# POPFERRY_TEST_SUBMISSION_DUMP_DIR (sink/submission/),
# POPFERRY_TEST_CLIENT_CERT, POPFERRY_TEST_CLIENT_KEY (tls/client.pem/.key).
#
# POP3 (Dovecot 2.3.19): ANY username logs in with password "pw" (passdb
# static; USER/PASS or SASL PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256); any
# other password gets "-ERR [AUTH] Authentication failed." within
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
OAUTH_POP3_PORT=${POPFERRY_TEST_OAUTH_POP3_PORT:-23110}
OAUTH_POP3S_PORT=${POPFERRY_TEST_OAUTH_POP3S_PORT:-23995}
OAUTH_AUTH_PORT=${POPFERRY_TEST_OAUTH_AUTH_PORT:-23124}
CLIENTCERT_POP3S_PORT=${POPFERRY_TEST_CLIENTCERT_POP3S_PORT:-23996}
SUBMISSION_PORT=${POPFERRY_TEST_SUBMISSION_PORT:-23587}
SUBMISSIONS_PORT=${POPFERRY_TEST_SUBMISSIONS_PORT:-23465}
SUBMISSION_SINK_PORT=${POPFERRY_TEST_SUBMISSION_SINK_PORT:-23525}

MAIL_USER=popferry-test
PASSWORD=pw
# zsh, fish, man-db and groff-base: tests/shell_completions_and_man_page.rs
# loads the completion scripts into each shell and renders the man page.
PACKAGES=(dovecot-core dovecot-pop3d postfix openssl systemd zsh fish man-db groff-base)
# The peers `popferry import` reads the state of: tests/import_from_peer_tools.rs
# runs each against Dovecot (tests/support/peers.rs).  Nothing of theirs is
# started here, and none of them removes a package the tests use.
PACKAGES+=(fetchmail mpop getmail6)
DOVECOT=/usr/sbin/dovecot
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX_MASTER=/usr/lib/postfix/sbin/master
# Start order; stop goes backwards.
SERVICES=(dovecot smtp-accept smtp-tempfail smtp-permfail
    smtp-submission dovecot-oauth dovecot-cert postfix)
JWT_ISSUER=https://idp.popferry.test
JWT_AZP=popferry-test
JWT_KID=lab1

RUN=$DIR/run
LOG=$DIR/log
TLS=$DIR/tls
MAIL_ROOT=$DIR/mail
DUMP_DIR=$DIR/sink/accept
DOVECOT_CONF=$DIR/dovecot/dovecot.conf
OAUTH_MAIL_ROOT=$DIR/mail-oauth
SUBMISSION_DUMP_DIR=$DIR/sink/submission
JWT_KEY_DIR=$DIR/jwt
PF_DIR=$DIR/postfix

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
OWNER=services.sh
# shellcheck source=scripts/lib/daemons.sh
. "$REPO_ROOT/scripts/lib/daemons.sh"
# shellcheck source=scripts/lib/dovecot.sh
. "$REPO_ROOT/scripts/lib/dovecot.sh"
# shellcheck source=scripts/lib/lab_tls.sh
. "$REPO_ROOT/scripts/lib/lab_tls.sh"
# shellcheck source=scripts/lib/postfix.sh
. "$REPO_ROOT/scripts/lib/postfix.sh"
# shellcheck source=scripts/lib/interop_pop3.sh
. "$REPO_ROOT/scripts/lib/interop_pop3.sh"
# shellcheck source=scripts/lib/interop_mta.sh
. "$REPO_ROOT/scripts/lib/interop_mta.sh"
# shellcheck source=scripts/lib/prometheus.sh
. "$REPO_ROOT/scripts/lib/prometheus.sh"
# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
SERVICES+=("${MTA_SERVICES[@]}" prometheus postgres)

need_root() {
    [[ $EUID -eq 0 ]] || die "'$1' must run as root (try: sudo $0 $1)"
}

# ---------------------------------------------------------------- install --

# Postfix's "No configuration" leaves the system MTA unconfigured, so its
# init script cannot start a system Postfix; we only want smtp-sink and our
# own private instance.
install_services() {
    echo "postfix postfix/main_mailer_type select No configuration" |
        debconf-set-selections
    install_packages "${PACKAGES[@]}"
    install_user
    interop_pop3_install
    interop_mta_install
    prometheus_install
    postgres_install
}

cmd_install() {
    need_root install
    install_services
    local exe
    for exe in "$DOVECOT" "$SMTP_SINK" "$POSTFIX_MASTER"; do
        [[ -x $exe ]] || die "$exe missing after install"
    done
}

# --------------------------------------------------------------- generate --

gen_dovecot_conf() {   # gen_dovecot_conf UID GID: writes $DOVECOT_CONF.new
    mkdir -p "$DIR/dovecot"
    {
        dovecot_base_conf dovecot "$1" "$2" "$MAIL_ROOT"
        cat <<EOF

ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
auth_mechanisms = plain login cram-md5 scram-sha-256
EOF
        dovecot_password_auth
        dovecot_login_service "$POP3_PORT" "$POP3S_PORT"
    } >"$DOVECOT_CONF.new"
}

validate_ports() {
    local -A seen=()
    local v p
    for v in POP3_PORT POP3S_PORT SMTP_PORT SMTP_TEMPFAIL_PORT SMTP_PERMFAIL_PORT \
        OAUTH_POP3_PORT OAUTH_POP3S_PORT OAUTH_AUTH_PORT CLIENTCERT_POP3S_PORT \
        SUBMISSION_PORT SUBMISSIONS_PORT SUBMISSION_SINK_PORT "${INTEROP_POP3_PORT_VARS[@]}" \
        "${MTA_PORT_VARS[@]}" "${PROMETHEUS_PORT_VARS[@]}" "${PG_PORT_VARS[@]}"; do
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

    mkdir -p "$DIR" "$RUN" "$LOG" "$MAIL_ROOT" "$OAUTH_MAIL_ROOT" "$DUMP_DIR" "$SUBMISSION_DUMP_DIR"
    chmod 755 "$DIR" "$MAIL_ROOT" "$OAUTH_MAIL_ROOT" "$DIR/sink"
    chown "$uid:$gid" "$MAIL_ROOT" "$OAUTH_MAIL_ROOT" "$DUMP_DIR" "$SUBMISSION_DUMP_DIR"
    # Dovecot's pop3 and smtp-sink run as $MAIL_USER: it must reach and
    # write these directories, which fails e.g. under a 0700 /root.
    local d
    for d in "$MAIL_ROOT" "$OAUTH_MAIL_ROOT" "$DUMP_DIR" "$SUBMISSION_DUMP_DIR"; do
        setpriv --reuid="$uid" --regid="$gid" --clear-groups test -w "$d" -a -x "$d" ||
            die "user $MAIL_USER cannot write $d (a parent directory is not world-searchable?).
Set POPFERRY_TEST_DIR to a directory under e.g. /var/tmp."
    done
    # Unix sockets live in base_dir; their paths must stay under 108 bytes.
    ((${#DIR} <= 64)) || die "POPFERRY_TEST_DIR path too long for Dovecot's sockets (${#DIR} > 64 chars): $DIR"

    gen_tls
    postgres_start
    gen_selfsigned
    gen_client_cert
    gen_jwt_key
    # In the background meanwhile; joined before env is written.
    interop_pop3_start

    gen_dovecot_conf "$uid" "$gid"
    start_dovecot dovecot "$TLS_CHANGED" "$MAIL_ROOT" \
        "$POP3_PORT=POPFERRY_TEST_POP3_PORT" "$POP3S_PORT=POPFERRY_TEST_POP3S_PORT"

    # --- smtp-sink x4.  Common options: drop root for $MAIL_USER after
    # binding (-u), IPv4, up to 256 concurrent sessions (-m), 100 s idle
    # timeout, and no AUTH/XCLIENT/XFORWARD in the EHLO reply (-a -C -F):
    # smtp-sink would answer AUTH with a bogus "250", not 235.  EHLO then
    # offers PIPELINING (accepting sinks only), 8BITMIME,
    # ENHANCEDSTATUSCODES, DSN.  smtp-sink has no STARTTLS: plain SMTP only.
    # -h names each sink in its banner, so a log shows which one answered.
    local common=(-u "$MAIL_USER" -4 -m 256 -t 100 -a -C -F)
    start_sink smtp-accept "$SMTP_PORT" POPFERRY_TEST_SMTP_PORT "$DUMP_DIR" \
        "${common[@]}" -h popferry-test-accept -d "$DUMP_DIR/%Y%m%d%H%M%S."
    start_sink smtp-tempfail "$SMTP_TEMPFAIL_PORT" POPFERRY_TEST_SMTP_TEMPFAIL_PORT - \
        "${common[@]}" -h popferry-test-tempfail \
        -r . -b "451 4.3.0 popferry test sink: try again later"
    start_sink smtp-permfail "$SMTP_PERMFAIL_PORT" POPFERRY_TEST_SMTP_PERMFAIL_PORT - \
        "${common[@]}" -h popferry-test-permfail \
        -f . -B "554 5.6.0 popferry test sink: message rejected"
    start_sink smtp-submission "$SUBMISSION_SINK_PORT" POPFERRY_TEST_SUBMISSION_SINK_PORT \
        "$SUBMISSION_DUMP_DIR" "${common[@]}" -h popferry-test-submission \
        -d "$SUBMISSION_DUMP_DIR/%Y%m%d%H%M%S."

    # --- the OAuth / client certificate / submission servers.  Postfix
    # keeps a connection to dovecot-oauth's auth service, so it restarts
    # with it.
    local oauth_pid
    oauth_pid=$(running_pid dovecot-oauth) || oauth_pid=
    gen_oauth_dovecot_conf "$uid" "$gid"
    start_dovecot dovecot-oauth "$SELFSIGNED_CHANGED" "$OAUTH_MAIL_ROOT" \
        "$OAUTH_POP3_PORT=POPFERRY_TEST_OAUTH_POP3_PORT" \
        "$OAUTH_POP3S_PORT=POPFERRY_TEST_OAUTH_POP3S_PORT" \
        "$OAUTH_AUTH_PORT=POPFERRY_TEST_OAUTH_AUTH_PORT"
    gen_clientcert_dovecot_conf "$uid" "$gid"
    start_dovecot dovecot-cert "$TLS_CHANGED$CLIENT_CA_CHANGED" - \
        "$CLIENTCERT_POP3S_PORT=POPFERRY_TEST_CLIENTCERT_POP3S_PORT"
    gen_postfix_conf
    local oauth_restarted=
    [[ $(running_pid dovecot-oauth) == "$oauth_pid" ]] || oauth_restarted=1
    start_postfix postfix "$PF_DIR" "$SELFSIGNED_CHANGED$oauth_restarted" \
        "$SUBMISSION_PORT=POPFERRY_TEST_SUBMISSION_PORT" \
        "$SUBMISSIONS_PORT=POPFERRY_TEST_SUBMISSIONS_PORT"
    interop_mta_start "$uid" "$gid" "$TLS_CHANGED" "$oauth_restarted"
    prometheus_start

    interop_pop3_wait
    write_env "$uid" "$gid"
    say "ready; source $DIR/env"
}

# start_sink NAME PORT VARNAME DUMP_DIR|- OPTIONS...: (re)start unless the
# same command line is already running.
start_sink() {
    local name=$1 port=$2 var=$3 dump_dir=$4 pid
    shift 4
    local argv=("$SMTP_SINK" "$@" "127.0.0.1:$port" 256)
    if ! running_pid "$name" >/dev/null && [[ $dump_dir != - ]]; then
        # Fresh sink, fresh dump dir (old dumps stay until the next start).
        find "$dump_dir" -mindepth 1 -delete
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
    local uid=$1 gid=$2 interop
    mapfile -t interop < <(interop_pop3_env)
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
            "POPFERRY_TEST_SMTP_PERMFAIL_PORT=$SMTP_PERMFAIL_PORT" \
            "POPFERRY_TEST_OAUTH_POP3_PORT=$OAUTH_POP3_PORT" \
            "POPFERRY_TEST_OAUTH_POP3S_PORT=$OAUTH_POP3S_PORT" \
            "POPFERRY_TEST_OAUTH_AUTH_PORT=$OAUTH_AUTH_PORT" \
            "POPFERRY_TEST_OAUTH_MAIL_ROOT=$OAUTH_MAIL_ROOT" \
            "POPFERRY_TEST_SELFSIGNED_CERT=$TLS/selfsigned.pem" \
            "POPFERRY_TEST_JWT_KEY_FILE=$(jwt_key_file)" \
            "POPFERRY_TEST_JWT_ISSUER=$JWT_ISSUER" \
            "POPFERRY_TEST_JWT_AZP=$JWT_AZP" \
            "POPFERRY_TEST_JWT_KID=$JWT_KID" \
            "POPFERRY_TEST_SUBMISSION_PORT=$SUBMISSION_PORT" \
            "POPFERRY_TEST_SUBMISSIONS_PORT=$SUBMISSIONS_PORT" \
            "POPFERRY_TEST_SUBMISSION_SINK_PORT=$SUBMISSION_SINK_PORT" \
            "POPFERRY_TEST_SUBMISSION_DUMP_DIR=$SUBMISSION_DUMP_DIR" \
            "POPFERRY_TEST_CLIENTCERT_POP3S_PORT=$CLIENTCERT_POP3S_PORT" \
            "POPFERRY_TEST_CLIENT_CERT=$TLS/client.pem" \
            "POPFERRY_TEST_CLIENT_KEY=$TLS/client.key" "${interop[@]}" \
            $(interop_mta_env) $(prometheus_env) $(postgres_env); do
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
    # Reverse start order: Postfix first, the first Dovecot last.
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        # TERM would be PostgreSQL's smart shutdown, which waits for
        # pooled clients forever (see postgres_stop).
        [[ ${SERVICES[i]} == postgres ]] && { postgres_stop fast; continue; }
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
        # (An env file written before these servers existed lacks them.)
        OAUTH_POP3_PORT=${POPFERRY_TEST_OAUTH_POP3_PORT:-$OAUTH_POP3_PORT}
        OAUTH_POP3S_PORT=${POPFERRY_TEST_OAUTH_POP3S_PORT:-$OAUTH_POP3S_PORT}
        OAUTH_AUTH_PORT=${POPFERRY_TEST_OAUTH_AUTH_PORT:-$OAUTH_AUTH_PORT}
        CLIENTCERT_POP3S_PORT=${POPFERRY_TEST_CLIENTCERT_POP3S_PORT:-$CLIENTCERT_POP3S_PORT}
        SUBMISSION_PORT=${POPFERRY_TEST_SUBMISSION_PORT:-$SUBMISSION_PORT}
        SUBMISSIONS_PORT=${POPFERRY_TEST_SUBMISSIONS_PORT:-$SUBMISSIONS_PORT}
        SUBMISSION_SINK_PORT=${POPFERRY_TEST_SUBMISSION_SINK_PORT:-$SUBMISSION_SINK_PORT}
        PG_PORT=${POPFERRY_TEST_PG_PORT:-$PG_PORT}
        local v var
        for v in "${MTA_PORT_VARS[@]}"; do
            var=POPFERRY_TEST_$v
            printf -v "$v" %s "${!var:-${!v}}"
        done
    fi
    for name in "${SERVICES[@]}"; do
        case $name in
        dovecot) port="$POP3_PORT,$POP3S_PORT" ;;
        smtp-accept) port=$SMTP_PORT ;;
        smtp-tempfail) port=$SMTP_TEMPFAIL_PORT ;;
        smtp-permfail) port=$SMTP_PERMFAIL_PORT ;;
        smtp-submission) port=$SUBMISSION_SINK_PORT ;;
        dovecot-oauth) port="$OAUTH_POP3_PORT,$OAUTH_POP3S_PORT,$OAUTH_AUTH_PORT" ;;
        dovecot-cert) port=$CLIENTCERT_POP3S_PORT ;;
        postfix) port="$SUBMISSION_PORT,$SUBMISSIONS_PORT" ;;
        *) port="$(interop_pop3_ports "$name")$(interop_mta_ports "$name")$(prometheus_ports "$name")$(postgres_ports "$name")" ;;
        esac
        if pid=$(running_pid "$name"); then
            printf '%-16s running  pid %-7s 127.0.0.1:%s\n' "$name" "$pid" "$port"
        else
            printf '%-16s stopped\n' "$name"
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
