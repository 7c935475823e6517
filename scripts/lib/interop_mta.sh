# shellcheck shell=bash
# interop_mta.sh - the receivers of the interop suite, beside the servers of
# scripts/services.sh (sourced by it; it calls the interop_mta_* functions).
# Each is a private instance on 127.0.0.1, started by PID like the others,
# all four at once:
#   postfix-mta   a full Postfix smtpd -> virtual(8) Maildirs
#                 (scripts/lib/interop_postfix.sh)
#   exim          Exim 4.96, unpacked, in a mount namespace
#                 (scripts/lib/interop_exim.sh)
#   dovecot-lmtp  Dovecot LMTP on TCP and a Unix socket -> Maildirs
#   aiosmtpd      scripted SMTP/LMTP listeners (scripts/lib/interop_receiver.py)
#
# Recipients, the same on the three real servers (DOMAIN is each one's own,
# see the env file): ok1@DOMAIN and ok2@DOMAIN are accepted, also with any
# +extension (ok1+t42@DOMAIN lands in ok1's Maildir), which is how parallel
# tests tell their deliveries apart; tempfail@DOMAIN gets 450 at RCPT
# (Postfix, Exim); every other local part gets 550 at RCPT.
#
# dovecot-lmtp: LHLO offers 8BITMIME, CHUNKING, ENHANCEDSTATUSCODES,
#   PIPELINING, STARTTLS (tls/server.pem); no AUTH.  full@DOMAIN is accepted
#   at RCPT and refused after the data with "552 5.2.2 ... Quota exceeded"
#   (a 1 KiB quota, already used; its Maildir is full/Maildir): LMTP's one
#   reply per recipient.  Maildirs mail/USER/Maildir, owner $MAIL_USER.  The socket is $DIR/dovecot-lmtp/base/lmtp.
# aiosmtpd: one process, listeners (ports in the env file):
#   AIOSMTPD_PORT         SMTP, STARTTLS, then AUTH PLAIN LOGIN
#                         ($AIOSMTPD_USER / $PASSWORD), PIPELINING,
#                         8BITMIME, SMTPUTF8
#   AIOSMTPD_PLAIN_PORT   SMTP offering none of those extensions
#   AIOSMTPD_BROKEN_PORT  SMTP, PIPELINING, 8BITMIME, answers DATA with 354
#                         even when every RCPT was refused
#   AIOSMTPD_LMTP_PORT    LMTP, PIPELINING, 8BITMIME
#   $AIOSMTPD_SOCKET      SMTP on a Unix socket, PIPELINING, 8BITMIME
#   Per-recipient replies by local part, and the dump format: see the
#   receiver's docstring.  Dumps: $DIR/aiosmtpd/dump, emptied on a fresh start.
#
# Installed once, into $MTA_CACHE (POPFERRY_TEST_CACHE_DIR, default
# /var/cache/popferry-test), shared by every state folder: the unpacked
# Exim, and a venv with aiosmtpd $AIOSMTPD_VERSION from PyPI.

MTA_CACHE=${POPFERRY_TEST_CACHE_DIR:-/var/cache/popferry-test}
POSTFIX_MTA_PORT=${POPFERRY_TEST_POSTFIX_MTA_PORT:-25525}
EXIM_PORT=${POPFERRY_TEST_EXIM_PORT:-25526}
DOVECOT_LMTP_PORT=${POPFERRY_TEST_DOVECOT_LMTP_PORT:-25524}
AIOSMTPD_PORT=${POPFERRY_TEST_AIOSMTPD_PORT:-25527}
AIOSMTPD_PLAIN_PORT=${POPFERRY_TEST_AIOSMTPD_PLAIN_PORT:-25528}
AIOSMTPD_BROKEN_PORT=${POPFERRY_TEST_AIOSMTPD_BROKEN_PORT:-25529}
AIOSMTPD_LMTP_PORT=${POPFERRY_TEST_AIOSMTPD_LMTP_PORT:-25530}
POSTFIX_MTA_LIMITED_PORT=${POPFERRY_TEST_POSTFIX_MTA_LIMITED_PORT:-25531}
# Names without POPFERRY_TEST_, for services.sh's port check.
MTA_PORT_VARS=(POSTFIX_MTA_PORT EXIM_PORT DOVECOT_LMTP_PORT AIOSMTPD_PORT
    AIOSMTPD_PLAIN_PORT AIOSMTPD_BROKEN_PORT AIOSMTPD_LMTP_PORT POSTFIX_MTA_LIMITED_PORT)
# shellcheck disable=SC2034 # services.sh adds them to SERVICES
MTA_SERVICES=(dovecot-lmtp postfix-mta exim aiosmtpd)

LMTP_DIR=$DIR/dovecot-lmtp
LMTP_DOMAIN=lmtp.popferry.test
AIOSMTPD_DIR=$DIR/aiosmtpd
AIOSMTPD_VERSION=1.4.6
AIOSMTPD_USER=popferry
AIOSMTPD_VENV=$MTA_CACHE/aiosmtpd-$AIOSMTPD_VERSION

# shellcheck source=scripts/lib/interop_postfix.sh
. "$REPO_ROOT/scripts/lib/interop_postfix.sh"
# shellcheck source=scripts/lib/interop_exim.sh
. "$REPO_ROOT/scripts/lib/interop_exim.sh"

interop_mta_install() {
    install_packages dovecot-lmtpd python3-venv
    mkdir -p "$MTA_CACHE"
    install_exim
    if ! "$AIOSMTPD_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
        say "installing aiosmtpd $AIOSMTPD_VERSION from PyPI into $AIOSMTPD_VENV"
        rm -rf "$AIOSMTPD_VENV"
        # Debian's python3 (it has the venv module), whatever else is on PATH.
        /usr/bin/python3 -m venv "$AIOSMTPD_VENV"
        "$AIOSMTPD_VENV/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION" ||
            die "pip install aiosmtpd==$AIOSMTPD_VERSION failed"
    fi
}

# in_namespace NAME SRC:DST... -- PORT=VARNAME... -- ARGV...: launch ARGV as
# NAME in a private mount namespace where each SRC is bind-mounted over DST.
# The shell in between execs ARGV, so the PID stays the daemon's.
in_namespace() {
    local name=$1 binds=() ports=()
    shift
    while [[ $1 != -- ]]; do binds+=("$1"); shift; done
    shift
    while [[ $1 != -- ]]; do ports+=("$1"); shift; done
    shift
    # shellcheck disable=SC2016 # expanded by the inner shell
    local script='while [[ $1 != -- ]]; do mount --bind "${1%%:*}" "${1#*:}" || exit 111; shift; done; shift; exec "$@"'
    local wrapper=(unshare -m --propagation private /bin/bash -c "$script" ns "${binds[@]}" --)
    LAUNCH_SKIP=${#wrapper[@]} launch "$name" "${ports[@]}" -- "${wrapper[@]}" "$@"
}

# gen_lmtp_conf UID GID: writes $LMTP_DIR/dovecot.conf.new and the users.
gen_lmtp_conf() {
    local uid=$1 gid=$2 dh="" user
    mkdir -p "$LMTP_DIR/mail"
    chown "$uid:$gid" "$LMTP_DIR/mail"
    [[ -s /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    # Dovecot lets a message in while the mailbox is under its quota, so
    # "full" (quota 1 KiB) starts out holding a 2 KiB message, in a home
    # outside the mail root that a fresh start empties.
    local full=$LMTP_DIR/full/Maildir
    if [[ ! -s $full/cur/seed ]]; then
        mkdir -p "$full/cur" "$full/new" "$full/tmp"
        { printf 'Subject: fills the quota\n\n'; head -c 2048 /dev/zero | tr '\0' x; echo; } >"$full/cur/seed"
        chown -R "$uid:$gid" "$LMTP_DIR/full"
    fi
    for user in ok1 ok2; do
        echo "$user::$uid:$gid::$LMTP_DIR/mail/$user::"
    done >"$LMTP_DIR/users"
    # (The userdb_ prefix is needed: passdb and userdb read the same file.)
    echo "full::$uid:$gid::$LMTP_DIR/full::userdb_quota_rule=*:storage=1" >>"$LMTP_DIR/users"
    cat >"$LMTP_DIR/dovecot.conf.new" <<EOF
# Generated by scripts/services.sh - Dovecot LMTP for popferry's interop
# tests.  Regenerated on every start; edits here are lost.
instance_name = popferry-test-lmtp
base_dir = $LMTP_DIR/base
state_dir = $LMTP_DIR/state
log_path = $LOG/dovecot-lmtp.log
info_log_path = $LOG/dovecot-lmtp-info.log
protocols = lmtp
listen = 127.0.0.1
ssl = yes
$dh
ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
# The user is the local part (any domain); a +extension is dropped for the
# lookup and the delivery goes to INBOX.
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
# (The passdb only because Dovecot's auth process refuses to start
# without one; nobody logs in.)
passdb {
  driver = passwd-file
  args = username_format=%n $LMTP_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $LMTP_DIR/users
}
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:~/Maildir
# The quota is checked after the data, so "full" is refused there, per
# recipient, not at RCPT.
mail_plugins = \$mail_plugins quota
lmtp_rcpt_check_quota = no
plugin {
  quota = maildir:User quota
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DOVECOT_LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0666
  }
  process_min_avail = 2
}
EOF
}

# aiosmtpd_argv: one word a line.  The socket comes first: launch waits for
# the TCP ports, which then open after it.
aiosmtpd_argv() {
    local tcp=127.0.0.1
    printf '%s\n' "$AIOSMTPD_VENV/bin/python" "$REPO_ROOT/scripts/lib/interop_receiver.py" \
        --dump-dir "$AIOSMTPD_DIR/dump" --cert "$TLS/server.pem" --key "$TLS/server.key" \
        --user "$AIOSMTPD_USER" --password "$PASSWORD" \
        --listen "socket,smtp,unix:$AIOSMTPD_DIR/smtp.sock,pipelining" \
        --listen "smtp,smtp,$tcp:$AIOSMTPD_PORT,starttls,auth,pipelining,smtputf8" \
        --listen "plain,smtp,$tcp:$AIOSMTPD_PLAIN_PORT,no8bit" \
        --listen "broken,smtp,$tcp:$AIOSMTPD_BROKEN_PORT,pipelining,data-anyway" \
        --listen "lmtp,lmtp,$tcp:$AIOSMTPD_LMTP_PORT,pipelining"
}

# start_aiosmtpd RESTART: (re)start unless the same command line runs.
start_aiosmtpd() {
    local argv pid
    mapfile -t argv < <(aiosmtpd_argv)
    if pid=$(running_pid aiosmtpd); then
        if [[ -z $1 ]] && cmdline_is "$pid" <(printf '%s\0' "${argv[@]}"); then
            return 0
        fi
        stop_service aiosmtpd
    fi
    mkdir -p "$AIOSMTPD_DIR/dump"
    find "$AIOSMTPD_DIR/dump" -mindepth 1 -delete
    launch aiosmtpd "$AIOSMTPD_PORT=POPFERRY_TEST_AIOSMTPD_PORT" \
        "$AIOSMTPD_PLAIN_PORT=POPFERRY_TEST_AIOSMTPD_PLAIN_PORT" \
        "$AIOSMTPD_BROKEN_PORT=POPFERRY_TEST_AIOSMTPD_BROKEN_PORT" \
        "$AIOSMTPD_LMTP_PORT=POPFERRY_TEST_AIOSMTPD_LMTP_PORT" -- "${argv[@]}"
}

# interop_mta_start UID GID TLS_CHANGED OAUTH_RESTARTED: generate every
# config, then start the four receivers in parallel (each start waits for
# its own ports); fails if any did not come up.
interop_mta_start() {
    local uid=$1 gid=$2 tls=$3 oauth=$4 pids=() failed=0 p
    gen_postfix_mta_conf "$uid" "$gid"
    gen_exim_conf
    gen_lmtp_conf "$uid" "$gid"
    start_dovecot dovecot-lmtp "$tls" "$LMTP_DIR/mail" \
        "$DOVECOT_LMTP_PORT=POPFERRY_TEST_DOVECOT_LMTP_PORT" &
    pids+=($!)
    start_postfix_mta "$tls$oauth" &
    pids+=($!)
    start_exim "$tls" &
    pids+=($!)
    start_aiosmtpd "$tls" &
    pids+=($!)
    for p in "${pids[@]}"; do
        wait "$p" || failed=1
    done
    ((failed == 0)) || die "an interop receiver did not start (see above)"
}

# interop_mta_env UID GID: the env file's lines NAME=VALUE for these servers.
interop_mta_env() {
    local v
    for v in "${MTA_PORT_VARS[@]}"; do
        echo "POPFERRY_TEST_$v=${!v}"
    done
    printf '%s\n' \
        "POPFERRY_TEST_POSTFIX_MTA_DOMAIN=$POSTFIX_MTA_DOMAIN" \
        "POPFERRY_TEST_POSTFIX_MTA_MAIL_ROOT=$POSTFIX_MTA_DIR/mail" \
        "POPFERRY_TEST_POSTFIX_MTA_CONFIG_DIR=$POSTFIX_MTA_DIR/etc" \
        "POPFERRY_TEST_POSTFIX_MTA_LOG=$LOG/postfix-mta.log" \
        "POPFERRY_TEST_POSTFIX_MTA_VERSION=$(postconf -d -h mail_version)" \
        "POPFERRY_TEST_POSTFIX_MTA_USER=$AIOSMTPD_USER" \
        "POPFERRY_TEST_POSTFIX_MTA_PASSWORD=$PASSWORD" \
        "POPFERRY_TEST_EXIM_DOMAIN=$EXIM_DOMAIN" \
        "POPFERRY_TEST_EXIM_MAIL_ROOT=$EXIM_DIR/mail" \
        "POPFERRY_TEST_EXIM_SPOOL_DIR=$EXIM_DIR/spool" \
        "POPFERRY_TEST_EXIM_LOG=$EXIM_DIR/log/mainlog" \
        "POPFERRY_TEST_EXIM_USER=$EXIM_USER" \
        "POPFERRY_TEST_EXIM_PASSWORD=$PASSWORD" \
        "POPFERRY_TEST_EXIM_VERSION=$(exim_version)" \
        "POPFERRY_TEST_DOVECOT_LMTP_DOMAIN=$LMTP_DOMAIN" \
        "POPFERRY_TEST_DOVECOT_LMTP_SOCKET=$LMTP_DIR/base/lmtp" \
        "POPFERRY_TEST_DOVECOT_LMTP_MAIL_ROOT=$LMTP_DIR/mail" \
        "POPFERRY_TEST_DOVECOT_LMTP_FULL_MAILDIR=$LMTP_DIR/full/Maildir" \
        "POPFERRY_TEST_DOVECOT_LMTP_VERSION=$(dovecot --version | cut -d' ' -f1)" \
        "POPFERRY_TEST_AIOSMTPD_SOCKET=$AIOSMTPD_DIR/smtp.sock" \
        "POPFERRY_TEST_AIOSMTPD_DUMP_DIR=$AIOSMTPD_DIR/dump" \
        "POPFERRY_TEST_AIOSMTPD_USER=$AIOSMTPD_USER" \
        "POPFERRY_TEST_AIOSMTPD_PASSWORD=$PASSWORD" \
        "POPFERRY_TEST_AIOSMTPD_VERSION=$AIOSMTPD_VERSION"
}

# interop_mta_ports NAME: the ports of receiver NAME, for `status`.
interop_mta_ports() {
    case $1 in
    dovecot-lmtp) echo "$DOVECOT_LMTP_PORT" ;;
    postfix-mta) echo "$POSTFIX_MTA_PORT" ;;
    exim) echo "$EXIM_PORT" ;;
    aiosmtpd) echo "$AIOSMTPD_PORT,$AIOSMTPD_PLAIN_PORT,$AIOSMTPD_BROKEN_PORT,$AIOSMTPD_LMTP_PORT" ;;
    esac
}
