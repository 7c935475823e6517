# shellcheck shell=bash disable=SC2034 # (its variables are read by bench/run)
# tools.sh - how each tool is configured and started. Sourced by bench/run.
#
# tool_setup TOOL DIR writes TOOL's configuration into DIR (a fresh, empty
# folder for this one run, which also holds the tool's state: ledger, UID
# lists, ...) and sets:
#   CMD      the command of one poll
#   STARTS   how many times CMD is started (scenario c: once per poll)
#   OKRC     exit statuses that count as success
#   RECEIVED "sink", or the Maildir the tool delivered to
# It reads the scenario's POP_PORT, POP_TLS (0 or 1), POLLS, SMTP_PORT
# (the sink, or the proxy in front of it) and MAILBOX_USERS (one login, or
# scenario g's 100: each tool then takes them all in its native
# multi-account way, see bench/README.md), and the bench's CA_FILE,
# MAILBOX_PASS, RCPT.
#
# Every peer gets its fastest native setup that still deletes what it
# fetched and hands each message to the sink (except mpop-maildir, the
# reference that writes a local Maildir instead). Why each option is there
# is in bench/README.md.

TOOLS_ALL="popferry limit limit-chained fetchmail getmail mpop mpop-maildir"

# Debian packages each tool needs on top of the servers'.
tool_packages() {
    case $1 in
    fetchmail) echo fetchmail ;;
    getmail) echo getmail6 ;;
    mpop) echo mpop msmtp ;;
    mpop-maildir) echo mpop ;;
    esac
}

tool_setup() {
    local tool=$1 dir=$2
    STARTS=$POLLS OKRC=0 RECEIVED=sink
    case $tool in
    popferry) setup_popferry "$dir" ;;
    limit | limit-chained) setup_limit "$tool" "$dir" ;;
    fetchmail) setup_fetchmail "$dir" ;;
    getmail) setup_getmail "$dir" ;;
    mpop | mpop-maildir) setup_mpop "$tool" "$dir" ;;
    *) die "unknown tool '$tool' (known: $TOOLS_ALL)" ;;
    esac
}

setup_popferry() {
    local dir=$1 tls=none
    ((POP_TLS)) && tls=implicit
    # A fresh ledger per run; the polls of scenario c share it, as the
    # polls of a cron job would. The inline password is accepted because
    # the file is mode 600.
    # The other tools do not pace logins: with popferry's default of 10 a
    # second, scenario g (100 accounts on one server) would measure the
    # pacing (10 s) rather than the relaying.
    cat >"$dir/popferry.toml" <<EOF
state = "$dir/ledger.db"

[daemon]
max_logins_per_second = 1000

[smtp]
host = "127.0.0.1"
port = $SMTP_PORT
tls = "none"
helo_name = "popferry.bench.test"
timeout = "300s"
$(popferry_connections)
EOF
    # One [[account]] per mailbox; fetch polls them all at once.
    local u
    for u in "${MAILBOX_USERS[@]}"; do
        cat >>"$dir/popferry.toml" <<EOF

[[account]]
name = "$u"
host = "127.0.0.1"
port = $POP_PORT
tls = "$tls"
ca_file = "$CA_FILE"
username = "$u"
password = "$MAILBOX_PASS"
deliver_to = ["$RCPT"]
timeout = "300s"
# Above the default 64 MiB, for scenario e's 100 MiB message.
max_message_size = "1GiB"
EOF
    done
    chmod 600 "$dir/popferry.toml"
    CMD=("$POPFERRY" fetch --config "$dir/popferry.toml")
}

# POPFERRY_MAX_CONNECTIONS=N sets [smtp] max_connections, to measure the
# default against other counts; unset, popferry's own default applies.
popferry_connections() {
    [[ -z ${POPFERRY_MAX_CONNECTIONS:-} ]] ||
        echo "max_connections = $POPFERRY_MAX_CONNECTIONS"
}

setup_limit() {
    local dir=$2
    CMD=("$PY" "$BENCH_LIB/limit.py" relay --pop3-port "$POP_PORT"
        --password "$MAILBOX_PASS"
        --smtp-port "$SMTP_PORT" --rcpt "$RCPT" --polls "$POLLS")
    ((POP_TLS)) && CMD+=(--tls --ca-file "$CA_FILE")
    # limit-chained: the next MAIL behind the dot, one SMTP round trip a message.
    [[ $1 == limit-chained ]] && CMD+=(--chain)
    if ((${#MAILBOX_USERS[@]} > 1)); then
        # Scenario g: one client per mailbox, all at once; xargs fails
        # (123) if any of them does.
        printf '%s\n' "${MAILBOX_USERS[@]}" >"$dir/users"
        CMD=(xargs -a "$dir/users" -P "${#MAILBOX_USERS[@]}" -I '{}' "${CMD[@]}" --user '{}')
    else
        CMD+=(--user "${MAILBOX_USERS[0]}")
    fi
    # Its c polls run in one process: the floor of the protocol work
    # without an interpreter start (see README).
    STARTS=1
}

setup_fetchmail() {
    local dir=$1 tls
    if ((POP_TLS)); then
        tls="ssl sslcertck sslcertfile \"$CA_FILE\" sslcommonname localhost sslproto 'TLS1.2+'"
    else
        # An empty sslproto: no opportunistic STLS on the plain port.
        tls="sslproto ''"
    fi
    # fetchall + no keep: fetch everything, delete it, no UIDL bookkeeping;
    # no rewrite / no mimedecode: pass messages through untouched; the
    # *limit 0 options: everything in one session and one SMTP connection;
    # smtpname forces the envelope recipient. One poll entry per mailbox
    # (named for it, via the server): fetchmail polls them one after another.
    printf '%s\n' "set no syslog" "set no bouncemail" >"$dir/fetchmailrc"
    local u
    for u in "${MAILBOX_USERS[@]}"; do
        cat >>"$dir/fetchmailrc" <<EOF
poll $u via 127.0.0.1 with proto POP3 service $POP_PORT auth password timeout 300
  user "$u" there with password "$MAILBOX_PASS" is "bench" here
  smtphost "127.0.0.1/$SMTP_PORT"
  smtpname "$RCPT"
  fetchall
  no keep
  no rewrite
  no mimedecode
  fetchsizelimit 0
  batchlimit 0
  fetchlimit 0
  $tls
EOF
    done
    chmod 600 "$dir/fetchmailrc"
    CMD=(env HOME="$dir" FETCHMAILHOME="$dir" fetchmail --nodetach -f "$dir/fetchmailrc")
    OKRC="0 1"   # 1 means "no mail", the normal result of scenario c
}

setup_getmail() {
    local dir=$1 retriever
    if ((POP_TLS)); then
        retriever="type = SimplePOP3SSLRetriever
ca_certs = $CA_FILE
ssl_cert_hostname = localhost"
    else
        retriever="type = SimplePOP3Retriever"
    fi
    # getmail6 has no SMTP destination; LMTP over TCP (one connection for
    # the run) is its fastest way into a mail server, and the sink speaks it.
    # One rc file per mailbox, all in one run: getmail takes them in turn.
    local u
    CMD=(getmail --getmaildir "$dir")
    for u in "${MAILBOX_USERS[@]}"; do
        CMD+=(--rcfile "getmailrc-$u")
        cat >"$dir/getmailrc-$u" <<EOF
[retriever]
$retriever
server = 127.0.0.1
port = $POP_PORT
username = $u
password = $MAILBOX_PASS

[destination]
type = MDA_lmtp
host = 127.0.0.1
port = $SMTP_PORT
override = $RCPT

[options]
verbose = 0
read_all = true
delete = true
EOF
    done
}

setup_mpop() {
    local tool=$1 dir=$2 tls delivery
    if ((POP_TLS)); then
        tls="tls on
tls_starttls off
tls_trust_file $CA_FILE
tls_host_override localhost"
    else
        tls="tls off"
    fi
    if [[ $tool == mpop ]]; then
        # mpop cannot speak SMTP: its documented way to a relay is one
        # msmtp process per message.
        delivery="delivery mda \"/usr/bin/msmtp --host=127.0.0.1 --port=$SMTP_PORT --auth=off --tls=off --from=%F -- $RCPT\""
    else
        mkdir -p "$dir/Maildir"/{new,cur,tmp}
        delivery="delivery maildir $dir/Maildir"
        RECEIVED=$dir/Maildir
    fi
    # One account per mailbox; mpop -a fetches them one after another.
    : >"$dir/mpoprc"
    local u
    for u in "${MAILBOX_USERS[@]}"; do
        cat >>"$dir/mpoprc" <<EOF
account $u
host 127.0.0.1
port $POP_PORT
user $u
password $MAILBOX_PASS
auth user
$tls
uidls_file $dir/uidls-$u
keep off
only_new off
$delivery

EOF
    done
    chmod 600 "$dir/mpoprc"
    CMD=(env HOME="$dir" mpop -C "$dir/mpoprc" -q -a)
}
