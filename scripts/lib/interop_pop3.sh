# shellcheck shell=bash
# interop_pop3.sh - the other POP3 servers of scripts/services.sh (sourced by
# it): GNU Mailutils, Courier, Cyrus and popa3d, each a private instance on
# 127.0.0.1, so the interop tests run popferry against more than Dovecot.
# Their configs: scripts/lib/interop_pop3_conf.sh; the mount namespace the
# last three run in: scripts/lib/interop_pop3_ns.sh.
#
# Courier, Cyrus and popa3d conflict with dovecot-pop3d (Conflicts:
# pop3-server), so apt-get install would remove the Dovecot every other test
# uses. Their packages are fetched with apt-get download and unpacked with
# dpkg-deb -x into $PKG_CACHE/root/PACKAGE_VERSION_ARCH/ (kept across runs,
# one folder per version, so CI unpacks them once), never installed; their
# libraries are ordinary packages that conflict with nothing. Inside a
# private mount namespace (unshare -m), overlays lay the unpacked /usr and
# /etc over the real ones and add the users and folders the binaries have
# compiled in; nothing outside the namespace sees them.
#
# Users (every server): pfpop1 .. pfpop12, password $PASSWORD. Mailutils
# wants the login with its domain: pfpop1@example.test. Tests take one user
# per test, so they run in parallel; tests/interop_pop3_servers.rs uses
# pfpop1 .. pfpop4, pfpop5 .. pfpop12 are free for other test files.
#
# Ports (override by exporting the variable before `start`):
#   POPFERRY_TEST_MAILUTILS_POP3_PORT   25110  mailutils, plain, offers STLS
#   POPFERRY_TEST_MAILUTILS_POP3S_PORT  25111  mailutils, implicit TLS
#   POPFERRY_TEST_COURIER_POP3_PORT     25120  Courier, plain, offers STLS
#   POPFERRY_TEST_COURIER_POP3S_PORT    25121  Courier, implicit TLS
#   POPFERRY_TEST_CYRUS_POP3_PORT       25130  Cyrus, plain, offers STLS
#   POPFERRY_TEST_CYRUS_POP3S_PORT      25131  Cyrus, implicit TLS
#   POPFERRY_TEST_POPA3D_POP3_PORT      25140  popa3d, plain only (no TLS)
# Every TLS port presents tls/server.pem (the test CA's, CN localhost).
#
# Putting mail in (the servers are emptied when freshly started; tests
# should still empty their user's mailbox first, e.g. with DELE over POP3):
#   mailutils  Maildir $POPFERRY_TEST_MAILUTILS_MAIL_ROOT/USER/INBOX
#              ({cur,new,tmp}; any owner: sessions run as root). On first
#              access mailutils writes an "X-UIDL:" header into each
#              message, so RETR serves one header line more than was put
#              in, and that first session's LIST sizes lack it.
#   courier    Maildir $POPFERRY_TEST_COURIER_MAIL_ROOT/USER/Maildir, owned
#              by POPFERRY_TEST_MAIL_UID:GID.
#   cyrus      a closed store: deliver over LMTP to the unix socket
#              $POPFERRY_TEST_CYRUS_LMTP_SOCKET (no AUTH needed there;
#              RCPT TO:<USER>). Cyrus puts "Return-Path:" and "Received:"
#              headers on top. Duplicate suppression is off, so identical
#              copies are all kept.
#   popa3d     mbox file $POPFERRY_TEST_POPA3D_MAIL_ROOT/USER, owned by
#              POPFERRY_TEST_MAIL_UID, group mail, mode 0600: each message
#              "From sender@example.org Mon Nov 23 11:33:29 2026\n", its
#              lines (body lines starting "From " quoted as ">From "), an
#              empty line. popa3d does not undo that quoting on RETR, and
#              derives a UIDL from the message content: identical messages
#              share one UIDL.
# env also has POPFERRY_TEST_<SERVER>_USERS (the logins, space-separated)
# and POPFERRY_TEST_<SERVER>_VERSION (its Debian package version), for
# SERVER in DOVECOT (version only) MAILUTILS COURIER CYRUS POPA3D.

MAILUTILS_POP3_PORT=${POPFERRY_TEST_MAILUTILS_POP3_PORT:-25110}
MAILUTILS_POP3S_PORT=${POPFERRY_TEST_MAILUTILS_POP3S_PORT:-25111}
COURIER_POP3_PORT=${POPFERRY_TEST_COURIER_POP3_PORT:-25120}
COURIER_POP3S_PORT=${POPFERRY_TEST_COURIER_POP3S_PORT:-25121}
CYRUS_POP3_PORT=${POPFERRY_TEST_CYRUS_POP3_PORT:-25130}
CYRUS_POP3S_PORT=${POPFERRY_TEST_CYRUS_POP3S_PORT:-25131}
POPA3D_POP3_PORT=${POPFERRY_TEST_POPA3D_POP3_PORT:-25140}
# For validate_ports in services.sh (shellcheck cannot see that use here).
# shellcheck disable=SC2034
INTEROP_POP3_PORT_VARS=(MAILUTILS_POP3_PORT MAILUTILS_POP3S_PORT COURIER_POP3_PORT
    COURIER_POP3S_PORT CYRUS_POP3_PORT CYRUS_POP3S_PORT POPA3D_POP3_PORT)
INTEROP_POP3_SERVICES=(mailutils courier cyrus popa3d)
SERVICES+=("${INTEROP_POP3_SERVICES[@]}")

PKG_CACHE=${POPFERRY_TEST_PKG_CACHE:-/var/cache/popferry-test}
INTEROP_USERS=(pfpop{1..12})
MAILUTILS_DOMAIN=example.test
# Installed normally: they remove nothing. mailutils-pop3d Provides
# pop3-server but does not conflict with it.
INTEROP_PACKAGES=(mailutils-pop3d gnutls-bin perl libcourier-unicode4 libgamin0 libgdbm6
    libidn12 libpcre3 libltdl7 libclamav12 libical3 libicu72 libjansson4 libpq5 libwrap0
    libxapian30 libzephyr4 libldap-2.5-0 libsqlite3-0 libxml2 libsasl2-modules
    libsasl2-modules-db db-util libcom-err2 libkrb5-3 libssl3)
# Unpacked only (see above), per server.
COURIER_DEBS=(courier-pop courier-base courier-authdaemon courier-authlib courier-authlib-userdb)
CYRUS_DEBS=(cyrus-pop3d cyrus-common sasl2-bin)
POPA3D_DEBS=(popa3d)
declare -A DEB_ROOT=() DEB_VERSION=()

INTEROP_NS=$REPO_ROOT/scripts/lib/interop_pop3_ns.sh
# shellcheck source=scripts/lib/interop_pop3_conf.sh
. "$REPO_ROOT/scripts/lib/interop_pop3_conf.sh"

# ---------------------------------------------------------------- install --

# candidates PKG...: "PKG VERSION" lines, apt's candidate versions (one
# apt-cache call: each takes about a second); VERSION is "(none)" without
# package lists.
candidates() {
    apt-cache policy "$@" 2>/dev/null |
        awk '/^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1) } $1 == "Candidate:" { print pkg, $2 }'
}

# unpack_deb PKG VERSION: DEB_ROOT[PKG] = the folder that version is
# unpacked in (made now unless cached), DEB_VERSION[PKG] = the version.
# Without a VERSION ("(none)" or empty) the newest cached unpack serves.
unpack_deb() {
    local pkg=$1 version=${2:-} root tmp deb
    if [[ -z $version || $version == "(none)" ]]; then
        root=$(find "$PKG_CACHE/root" -maxdepth 1 -name "${pkg}_*" 2>/dev/null | sort -V | tail -n 1)
        [[ -n $root ]] || die "no candidate version of Debian package $pkg (apt-get update?)"
    else
        # apt's own file naming: the epoch's ":" becomes "%3a".
        root=$PKG_CACHE/root/${pkg}_${version//:/%3a}_$(dpkg --print-architecture)
    fi
    if [[ ! -e $root/.unpacked ]]; then
        say "fetching and unpacking $pkg $version (not installed: it conflicts with dovecot-pop3d)"
        mkdir -p "$PKG_CACHE/root"
        tmp=$(mktemp -d "$PKG_CACHE/fetch.XXXXXX")
        # Root's download, into a folder the _apt sandbox user cannot write.
        (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$version") ||
            { rm -rf "$tmp"; die "apt-get download $pkg=$version failed"; }
        deb=$(find "$tmp" -name '*.deb' | head -n 1)
        rm -rf "$root"
        mkdir -p "$root"
        dpkg-deb -x "$deb" "$root" || { rm -rf "$tmp"; die "dpkg-deb -x $deb failed"; }
        touch "$root/.unpacked"
        rm -rf "$tmp"
    fi
    DEB_ROOT[$pkg]=$root
    DEB_VERSION[$pkg]=$(basename "$root" | cut -d_ -f2 | sed 's/%3a/:/')
}

interop_pop3_install() {
    install_packages "${INTEROP_PACKAGES[@]}"
    local debs=("${COURIER_DEBS[@]}" "${CYRUS_DEBS[@]}" "${POPA3D_DEBS[@]}") pkg version
    local -A candidate=()
    while read -r pkg version; do candidate[$pkg]=$version; done < <(candidates "${debs[@]}")
    if [[ ${candidate[popa3d]:-(none)} == "(none)" ]] &&
        ! find "$PKG_CACHE/root" -maxdepth 1 -name 'popa3d_*' 2>/dev/null | grep -q .; then
        # A fresh machine without package lists and nothing cached.
        apt-get update -qq || die "apt-get update failed"
        while read -r pkg version; do candidate[$pkg]=$version; done < <(candidates "${debs[@]}")
    fi
    for pkg in "${debs[@]}"; do
        unpack_deb "$pkg" "${candidate[$pkg]:-}"
    done
}

# deb_roots PKG...: their unpack folders, colon-separated, first on top.
deb_roots() {
    local pkg roots=()
    for pkg in "$@"; do roots+=("${DEB_ROOT[$pkg]}"); done
    (IFS=:; echo "${roots[*]}")
}

# ------------------------------------------------------------------ start --

# interop_restart NAME DIR RESTART: stop NAME if its generated files in DIR
# changed since it started (or RESTART is set, e.g. a new certificate).
# Returns 0 if NAME must be (re)started; a fresh start empties its mail.
interop_restart() {
    local name=$1 dir=$2 restart=$3 sum
    sum=$(find "$dir/conf" -type f -print0 | sort -z | xargs -0 cat | sha256sum)
    if running_pid "$name" >/dev/null; then
        if [[ -z $restart && $sum == "$(cat "$dir/conf.sum" 2>/dev/null)" ]]; then
            return 1
        fi
        say "$name config or certificate changed: restarting"
        stop_service "$name"
    fi
    echo "$sum" >"$dir/conf.sum"
    return 0
}

start_mailutils() {
    local m=$DIR/mailutils
    gen_mailutils_conf "$m"
    interop_restart mailutils "$m" "$TLS_CHANGED" || return 0
    find "$m/mail" "$m/locks" -mindepth 1 -delete
    interop_maildirs "$m/mail" INBOX
    launch mailutils "$MAILUTILS_POP3_PORT=POPFERRY_TEST_MAILUTILS_POP3_PORT" \
        "$MAILUTILS_POP3S_PORT=POPFERRY_TEST_MAILUTILS_POP3S_PORT" -- \
        /usr/sbin/pop3d --config-file="$m/conf/pop3d.conf"
}

start_courier() {
    local c=$DIR/courier
    gen_courier_conf "$c"
    interop_restart courier "$c" "$TLS_CHANGED" || return 0
    find "$c/mail" "$c/etc-upper" "$c/etc-work" -mindepth 1 -delete
    interop_maildirs "$c/mail" Maildir
    launch courier "$COURIER_POP3_PORT=POPFERRY_TEST_COURIER_POP3_PORT" \
        "$COURIER_POP3S_PORT=POPFERRY_TEST_COURIER_POP3S_PORT" -- \
        bash "$INTEROP_NS" courier "$c" "$(deb_roots "${COURIER_DEBS[@]}")" \
        "$COURIER_POP3_PORT" "$COURIER_POP3S_PORT"
}

start_cyrus() {
    local y=$DIR/cyrus
    gen_cyrus_conf "$y"
    interop_restart cyrus "$y" "$TLS_CHANGED" || return 0
    # A fresh Cyrus: empty spool and databases.
    rm -rf "$y/spool" "$y/db" "$y/run"
    cyrus_dirs "$y"
    launch cyrus "$CYRUS_POP3_PORT=POPFERRY_TEST_CYRUS_POP3_PORT" \
        "$CYRUS_POP3S_PORT=POPFERRY_TEST_CYRUS_POP3S_PORT" -- \
        bash "$INTEROP_NS" cyrus "$y" "$(deb_roots "${CYRUS_DEBS[@]}")"
    # The LMTP socket comes up with the POP3 ports, but check: tests need it.
    local _
    for _ in $(seq 50); do
        [[ -S $y/run/socket/lmtp ]] && return 0
        sleep 0.1
    done
    die "cyrus: no LMTP socket $y/run/socket/lmtp"
}

start_popa3d() {
    local p=$DIR/popa3d
    gen_popa3d_conf "$p"
    interop_restart popa3d "$p" "" || return 0
    find "$p/mail" -mindepth 1 -delete
    launch popa3d "$POPA3D_POP3_PORT=POPFERRY_TEST_POPA3D_POP3_PORT" -- \
        bash "$INTEROP_NS" popa3d "$p" "$(deb_roots "${POPA3D_DEBS[@]}")" "$POPA3D_POP3_PORT"
}

# interop_pop3_start: starts the four in the background, in parallel (each
# takes well under a second, but one after the other they would add up);
# interop_pop3_wait collects them. Needs gen_tls done.
INTEROP_POP3_JOBS=()
interop_pop3_start() {
    INTEROP_POP3_JOBS=()
    local name
    for name in "${INTEROP_POP3_SERVICES[@]}"; do
        "start_$name" &
        INTEROP_POP3_JOBS+=("$!")
    done
}

interop_pop3_wait() {
    local job failed=0
    for job in "${INTEROP_POP3_JOBS[@]}"; do
        wait "$job" || failed=1
    done
    ((failed == 0)) || die "a POP3 interop server did not start (see above)"
}

# interop_pop3_env: KEY=VALUE lines for write_env.
interop_pop3_env() {
    local users
    users=$(printf "%s@$MAILUTILS_DOMAIN " "${INTEROP_USERS[@]}")
    printf '%s\n' \
        "POPFERRY_TEST_DOVECOT_VERSION=$(dpkg-query -W -f='${Version}' dovecot-pop3d)" \
        "POPFERRY_TEST_MAILUTILS_POP3_PORT=$MAILUTILS_POP3_PORT" \
        "POPFERRY_TEST_MAILUTILS_POP3S_PORT=$MAILUTILS_POP3S_PORT" \
        "POPFERRY_TEST_MAILUTILS_USERS=${users% }" \
        "POPFERRY_TEST_MAILUTILS_MAIL_ROOT=$DIR/mailutils/mail" \
        "POPFERRY_TEST_MAILUTILS_VERSION=$(dpkg-query -W -f='${Version}' mailutils-pop3d)" \
        "POPFERRY_TEST_COURIER_POP3_PORT=$COURIER_POP3_PORT" \
        "POPFERRY_TEST_COURIER_POP3S_PORT=$COURIER_POP3S_PORT" \
        "POPFERRY_TEST_COURIER_USERS=${INTEROP_USERS[*]}" \
        "POPFERRY_TEST_COURIER_MAIL_ROOT=$DIR/courier/mail" \
        "POPFERRY_TEST_COURIER_VERSION=${DEB_VERSION[courier-pop]}" \
        "POPFERRY_TEST_CYRUS_POP3_PORT=$CYRUS_POP3_PORT" \
        "POPFERRY_TEST_CYRUS_POP3S_PORT=$CYRUS_POP3S_PORT" \
        "POPFERRY_TEST_CYRUS_USERS=${INTEROP_USERS[*]}" \
        "POPFERRY_TEST_CYRUS_LMTP_SOCKET=$DIR/cyrus/run/socket/lmtp" \
        "POPFERRY_TEST_CYRUS_VERSION=${DEB_VERSION[cyrus-pop3d]}" \
        "POPFERRY_TEST_POPA3D_POP3_PORT=$POPA3D_POP3_PORT" \
        "POPFERRY_TEST_POPA3D_USERS=${INTEROP_USERS[*]}" \
        "POPFERRY_TEST_POPA3D_MAIL_ROOT=$DIR/popa3d/mail" \
        "POPFERRY_TEST_POPA3D_VERSION=${DEB_VERSION[popa3d]}"
}

# ----------------------------------------------------------------- status --

# interop_pop3_ports NAME: the ports of one of the four, for cmd_status
# (after it has read env).
interop_pop3_ports() {
    case $1 in
    mailutils) echo "${POPFERRY_TEST_MAILUTILS_POP3_PORT:-$MAILUTILS_POP3_PORT},${POPFERRY_TEST_MAILUTILS_POP3S_PORT:-$MAILUTILS_POP3S_PORT}" ;;
    courier) echo "${POPFERRY_TEST_COURIER_POP3_PORT:-$COURIER_POP3_PORT},${POPFERRY_TEST_COURIER_POP3S_PORT:-$COURIER_POP3S_PORT}" ;;
    cyrus) echo "${POPFERRY_TEST_CYRUS_POP3_PORT:-$CYRUS_POP3_PORT},${POPFERRY_TEST_CYRUS_POP3S_PORT:-$CYRUS_POP3S_PORT}" ;;
    popa3d) echo "${POPFERRY_TEST_POPA3D_POP3_PORT:-$POPA3D_POP3_PORT}" ;;
    esac
}
