# shellcheck shell=bash
# daemons.sh - install and run private daemons on loopback, stopping only our
# own. Sourced by scripts/services.sh (the test servers) and bench/run (the
# benchmark's servers), so both follow one set of rules.
#
# The caller defines say and die (message prefix is theirs) and sets:
#   RUN        folder for NAME.pid, NAME.cmdline (exact argv) and NAME.ports
#   LOG        folder for NAME.stderr
#   MAIL_USER  the unprivileged system user that owns the mailboxes
#   OWNER      how messages name the caller, e.g. "services.sh"

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
    # Keep maintainer scripts from starting the system daemons where the
    # image does not already forbid it (Docker images ship this file).
    local policy=/usr/sbin/policy-rc.d added_policy='' rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || rc=$?
    [[ -z $added_policy ]] || rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
}

install_user() {
    getent passwd "$MAIL_USER" >/dev/null && return 0
    say "creating system user $MAIL_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$MAIL_USER"
}

# The PID file alone is not trusted: a PID is "ours" only while
# /proc/PID/cmdline is byte-for-byte the argv we launched (RUN/NAME.cmdline).
cmdline_is() {   # cmdline_is PID FILE
    # Through a pipe: /proc files claim size 0, and cmp compares sizes of
    # regular files before their contents.
    # shellcheck disable=SC2002
    cat "/proc/$1/cmdline" 2>/dev/null | cmp -s - "$2"
}

running_pid() {   # running_pid NAME -> prints PID, status 0 if ours and alive
    local pidf=$RUN/$1.pid cmdf=$RUN/$1.cmdline pid
    [[ -s $pidf && -s $cmdf ]] || return 1
    pid=$(<"$pidf")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline_is "$pid" "$cmdf" || return 1
    echo "$pid"
}

port_open() {   # something accepts TCP connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_service() {   # stop_service NAME: TERM, then KILL after ~5 s
    local name=$1 pid
    if pid=$(running_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        # (a dead process may linger as a zombie with an empty cmdline)
        for _ in $(seq 50); do
            cmdline_is "$pid" "$RUN/$name.cmdline" || break
            sleep 0.1
        done
        if cmdline_is "$pid" "$RUN/$name.cmdline"; then
            say "$name ($pid) ignored TERM, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        # Children (Dovecot's login processes) may hold the listening
        # sockets a moment longer: wait until the ports are really free.
        local port ports=()
        [[ -s $RUN/$name.ports ]] && read -ra ports <"$RUN/$name.ports"
        for port in "${ports[@]}"; do
            for _ in $(seq 50); do
                port_open "$port" || break
                sleep 0.1
            done
        done
        say "stopped $name ($pid)"
    elif [[ -e $RUN/$name.pid ]]; then
        say "$name not running (stale pid file removed)"
    fi
    rm -f "$RUN/$name.pid"
}

# Refuse to start on a port that another program already listens on.
ensure_port_free() {   # ensure_port_free PORT [VARNAME that chooses it]
    port_open "$1" || return 0
    local who=
    command -v ss >/dev/null && who=$(ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3)
    die "port $1 on 127.0.0.1 is already in use by a process $OWNER did not start${who:+:
$who}${2:+
Stop that process or choose another port: export $2=<free port>}"
}

# launch NAME PORT[=VARNAME]... -- ARGV...: start ARGV detached, record its
# PID and argv, wait until every PORT accepts connections.  With
# LAUNCH_SKIP=N, the first N words of ARGV are a wrapper that execs the rest
# in its place (a private mount namespace), so the rest is what is recorded
# and later checked as the daemon's command line.
launch() {
    local name=$1 ports=() pid p
    shift
    while [[ $1 != -- ]]; do ports+=("$1"); shift; done
    shift
    for p in "${ports[@]}"; do
        if [[ $p == *=* ]]; then ensure_port_free "${p%%=*}" "${p#*=}"; else ensure_port_free "$p"; fi
    done
    printf '%s\0' "${@:${LAUNCH_SKIP:-0}+1}" >"$RUN/$name.cmdline"
    echo "${ports[@]%%=*}" >"$RUN/$name.ports"
    # setsid: own session, so a Ctrl-C in the caller's terminal does not hit
    # the daemon directly (the caller's trap stops it in order instead).
    setsid "$@" </dev/null >>"$LOG/$name.stderr" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN/$name.pid"
    # Wait until every port accepts; fail early if the process dies.
    for p in "${ports[@]}"; do
        p=${p%%=*}
        for _ in $(seq 100); do
            port_open "$p" && continue 2
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        say "--- $LOG/$name.stderr:"; tail -n 20 "$LOG/$name.stderr" >&2 || true
        # A daemon's own log, if it keeps one (Dovecot, Postfix): $LOG/NAME.log
        [[ ! -s $LOG/$name.log ]] || { say "--- $LOG/$name.log:"; tail -n 20 "$LOG/$name.log" >&2 || true; }
        stop_service "$name"
        die "$name did not start listening on 127.0.0.1:$p"
    done
    running_pid "$name" >/dev/null || die "$name ($pid) runs, but not as recorded in $RUN/$name.cmdline"
    say "started $name ($pid) on ${ports[*]%%=*}"
}
