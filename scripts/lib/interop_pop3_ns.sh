#!/usr/bin/env bash
# interop_pop3_ns.sh SERVER DIR ROOTS [PORT...] - runs Courier, Cyrus or
# popa3d (see scripts/lib/interop_pop3.sh) in a private mount namespace
# and stays in the foreground as their supervisor: TERM stops them, and if
# one of them dies the rest are stopped too, so services.sh sees it gone.
#
#   SERVER  courier | cyrus | popa3d
#   DIR     its state folder; DIR/conf/etc is laid over /etc
#   ROOTS   the unpacked packages, colon-separated: each one's usr/ (and
#           etc/) is laid over /usr (and /etc)
#   PORT    courier: POP3 and POP3S; popa3d: POP3 (Cyrus reads its own
#           from its config)
#
# services.sh records this process's PID and argv: the re-exec under
# unshare below keeps both (unshare -m without --fork execs in place).
set -euo pipefail

if [[ -z ${POPFERRY_NS_INSIDE:-} ]]; then
    POPFERRY_NS_INSIDE=1 exec unshare -m --propagation private bash "$0" "$@"
fi
unset POPFERRY_NS_INSIDE

server=$1 dir=$2 roots=$3
shift 3

# overlay TARGET TOP...: TARGET shows the TOP folders (first wins) over its
# own contents, read-only.
overlay() {
    local target=$1
    shift
    mount -t overlay overlay -o "lowerdir=$(IFS=:; echo "$*"):$target" "$target"
}

# package_dirs SUBDIR: SUBDIR of every unpacked package that has one
# (overlayfs refuses a missing layer).
package_dirs() {
    local root pkgs
    IFS=: read -ra pkgs <<<"$roots"
    for root in "${pkgs[@]}"; do
        [[ ! -d $root/$1 ]] || echo "$root/$1"
    done
}

mapfile -t usr_layers < <(package_dirs usr)
mapfile -t etc_layers < <(package_dirs etc)
overlay /usr "${usr_layers[@]}"

pids=()
stop_all() {
    trap - TERM INT
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
}
trap 'stop_all; exit 0' TERM INT

case $server in
courier)
    pop3_port=$1 pop3s_port=$2
    # Writable /etc: makeuserdb writes /etc/courier/userdb.dat.
    layers=("$dir/conf/etc" "${etc_layers[@]}" /etc)
    mount -t overlay overlay -o "lowerdir=$(IFS=:; echo "${layers[*]}"),upperdir=$dir/etc-upper,workdir=$dir/etc-work" /etc
    # authdaemond's socket folder is compiled in under /run.
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/courier/authdaemon
    /usr/sbin/makeuserdb
    /usr/lib/courier/courier-authlib/authdaemond &
    pids+=("$!")
    for _ in $(seq 100); do
        [[ -S /run/courier/authdaemon/socket ]] && break
        sleep 0.05
    done
    # What /etc/courier/pop3d(-ssl) would set; -maxperip: the default 4
    # is less than the tests open at once.
    common=(env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin POP3AUTH="PLAIN LOGIN"
        POP3AUTH_TLS="PLAIN LOGIN" POP3_PROXY=0 COURIERTLS=/usr/bin/couriertls
        TLS_CERTFILE=/etc/courier/pop3d.pem TLS_VERIFYPEER=NONE MAILDIRPATH=Maildir)
    tcpd=(/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=200 -maxperip=200
        -nodnslookup -noidentlookup)
    login=(/usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d Maildir)
    "${common[@]}" POP3_STARTTLS=YES POP3_TLS_REQUIRED=0 \
        "${tcpd[@]}" "$pop3_port" "${login[@]}" &
    pids+=("$!")
    "${common[@]}" "${tcpd[@]}" "$pop3s_port" /usr/bin/couriertls -server -tcpd "${login[@]}" &
    pids+=("$!")
    ;;
cyrus)
    overlay /etc "$dir/conf/etc"
    # Cyrus logs only to syslog, and there is none: its log is lost, but
    # failures still show in the clients' replies.
    /usr/lib/cyrus/bin/master -C "$dir/conf/imapd.conf" -M "$dir/conf/cyrus.conf" \
        -p "$dir/run/master.pid" &
    pids+=("$!")
    ;;
popa3d)
    pop3_port=$1
    overlay /etc "$dir/conf/etc" "${etc_layers[@]}"
    overlay /var/lib "$dir/conf/varlib"
    mount --bind "$dir/mail" /var/mail
    # popa3d serves one connection on stdin/stdout (inetd style); Debian's
    # standalone mode would listen on *:110.
    systemd-socket-activate --inetd --accept --listen="127.0.0.1:$pop3_port" \
        /usr/sbin/popa3d &
    pids+=("$!")
    ;;
*)
    echo "interop_pop3_ns.sh: unknown server $server" >&2
    exit 2
    ;;
esac

# Any daemon ending on its own ends them all.
status=0
wait -n || status=$?
echo "interop_pop3_ns.sh: a $server daemon exited (status $status); stopping the rest" >&2
stop_all
exit 1
