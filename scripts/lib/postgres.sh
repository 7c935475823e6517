#!/usr/bin/env bash
# postgres.sh - a private PostgreSQL cluster for the fleet tests (issue 16:
# the ledger over PostgreSQL, leases, fencing).  Sourced by a caller that
# sets DIR, RUN, LOG and TLS and defines say and die (scripts/services.sh
# once it is hooked in), or run on its own:
#
#   scripts/lib/postgres.sh start|stop [fast|immediate]|restart [fast|immediate]|status|env
#   scripts/lib/postgres.sh psql ARGS...        psql as the superuser
#   scripts/lib/postgres.sh migrate [DATABASE]  apply migrations/postgres/
#
# (root; the same state folder as scripts/services.sh unless
# POPFERRY_TEST_DIR says otherwise).  A test that restarts the database
# under load runs `$POPFERRY_TEST_PG_CTL restart fast` (or `immediate`).
#
# Debian's postgresql (15 on Debian 12), installed without recommends.  The
# cluster is made by initdb and run by pg_ctl as the unprivileged system
# user $PG_USER (both refuse to run as root), in $DIR/postgres/:
#   data/      the cluster (0700, owner $PG_USER); postgresql.conf and
#              pg_hba.conf are ours, regenerated on every start
#   sock/      the Unix socket (0700): only $PG_USER (and root) get in, by
#              peer authentication, as the cluster's superuser $PG_USER
#   tls/       copies of tls/server.pem/.key owned by $PG_USER, since the
#              server refuses a key that others can read and cannot read
#              root's 0600 original
#   password   the password of role popferry, one line, no newline
#              (mode 0644 on purpose: tests that do not run as root read it)
# The log is $LOG/postgres.stderr (the server's own stderr log).
#
# Over TCP, on 127.0.0.1:$PG_PORT only: TLS only (hostnossl is rejected),
# certificate tls/server.pem from the test CA (SAN localhost, 127.0.0.1,
# ::1, so sslmode=verify-full works with host=127.0.0.1 or localhost), and
# scram-sha-256 password authentication for every role.  Role popferry
# (LOGIN CREATEDB, so a test may make a database of its own) owns database
# popferry.  fsync = on and synchronous_commit = on: a commit has reached
# the disk when it returns, as the issue requires of the ledger.
#
# A fresh start (nothing of ours running) makes a fresh cluster with a new
# password, like the other services empty their mailboxes; a start with an
# unchanged config keeps the running server; a changed one restarts it on
# the same data.  restart keeps the data (that is the test's point).
# Measured on the 2-core machine while it compiled: a fresh start 0.9-1.4 s
# (initdb most of it), restart fast 0.7 s, restart immediate 1.8 s (crash
# recovery), stop 0.4-0.6 s.  A client in a query sees SQLSTATE 57P01 and
# then a closed connection on either kind of restart.
#
# Env: POPFERRY_TEST_PG_PORT (25432), POPFERRY_TEST_PG_HOST (127.0.0.1),
# POPFERRY_TEST_PG_USER (popferry), POPFERRY_TEST_PG_DATABASE (popferry),
# POPFERRY_TEST_PG_URL (postgresql://popferry@127.0.0.1:PORT/popferry: no
# password and no TLS parameters in it, as in the issue's `state`),
# POPFERRY_TEST_PG_PASSWORD_FILE, POPFERRY_TEST_PG_CA (tls/ca.pem, the test
# CA), POPFERRY_TEST_PG_CTL (this script, for restart and psql).

PG_PORT=${POPFERRY_TEST_PG_PORT:-25432}
# Names without POPFERRY_TEST_, for services.sh's port check.
# shellcheck disable=SC2034 # services.sh checks them
PG_PORT_VARS=(PG_PORT)
PG_USER=popferry-test-pg
PG_ROLE=popferry
PG_DATABASE=popferry
PG_DIR=$DIR/postgres
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/sock

# Debian keeps initdb, pg_ctl and postgres out of PATH, in one folder per
# major version (/usr/bin/psql and pg_ctlcluster are wrappers aimed at the
# system's clusters, which this never touches).  The newest installed one.
pg_bin() {
    if [[ -n ${POPFERRY_TEST_PG_BIN:-} ]]; then
        echo "$POPFERRY_TEST_PG_BIN"
        return
    fi
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
    echo "${d%/pg_ctl}"
}

postgres_install() {
    local bin
    bin=$(pg_bin)
    if [[ ! -x $bin/initdb || ! -x $bin/pg_ctl || ! -x $bin/psql ]]; then
        say "installing Debian package: postgresql"
        apt-get update -qq
        # --no-upgrade: an installed postgresql stays as it is (the server
        # binaries then come from the postgresql-NN it already depends on).
        # The package creates and would start a system cluster "main" on
        # 5432; policy-rc.d (see daemons.sh) keeps it from starting, and
        # nothing here uses it.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            --no-upgrade -o DPkg::Lock::Timeout=600 postgresql >/dev/null
        bin=$(pg_bin)
        [[ -x $bin/initdb && -x $bin/pg_ctl ]] || die "initdb or pg_ctl missing after installing postgresql"
    fi
    getent passwd "$PG_USER" >/dev/null && return 0
    say "creating system user $PG_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_USER"
}

# as_pg CMD...: CMD as $PG_USER, from /, with a HOME it may read (psql and
# initdb complain about a cwd or HOME they cannot enter, e.g. /root).
as_pg() {
    (cd / && HOME=$PG_DIR setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups -- "$@")
}

# pg_conf: our whole postgresql.conf (initdb's is replaced, not edited).
pg_conf() {
    cat <<EOF
# Generated by scripts/lib/postgres.sh - private PostgreSQL for popferry's
# tests.  Regenerated on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0700
# 3 or 4 daemons with a pool each, plus the tests' own connections.
max_connections = 200
shared_buffers = 32MB
dynamic_shared_memory_type = posix

ssl = on
ssl_cert_file = '$PG_DIR/tls/server.pem'
ssl_key_file = '$PG_DIR/tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = scram-sha-256

# The ledger's guarantee: a commit is on disk when it returns.
fsync = on
synchronous_commit = on
full_page_writes = on

# Leases are decided by the database's clock: keep it the one tests read.
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, mdy'
lc_messages = 'C'
lc_monetary = 'C'
lc_numeric = 'C'
lc_time = 'C'
default_text_search_config = 'pg_catalog.english'

log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
# No statement logging: a CREATE ROLE ... PASSWORD would end up here.
log_statement = 'none'
log_min_error_statement = 'panic'
log_connections = off
log_disconnections = off
EOF
}

pg_hba() {
    cat <<EOF
# Generated by scripts/lib/postgres.sh.  TYPE DATABASE USER ADDRESS METHOD
local     all  $PG_USER                 peer
hostssl   all  all       127.0.0.1/32   scram-sha-256
hostnossl all  all       all            reject
EOF
}

# postgres_psql ARGS...: psql as the superuser, over the Unix socket.
postgres_psql() {
    as_pg "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" \
        -U "$PG_USER" -d postgres "$@"
}

# A fresh cluster: initdb, the role (password from stdin, never on a
# command line or in the log), the database.
pg_init() {
    local bin
    bin=$(pg_bin)
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    chown "$PG_USER:$PG_USER" "$PG_DATA"
    chmod 700 "$PG_DATA"
    # --no-sync: this cluster is thrown away on the next fresh start, so
    # initdb's own fsync of ~1,000 files (most of its time) buys nothing;
    # the server itself runs with fsync = on.
    as_pg "$bin/initdb" -D "$PG_DATA" -U "$PG_USER" -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 --no-sync --no-instructions \
        >>"$LOG/postgres-initdb.log" 2>&1 ||
        { tail -n 20 "$LOG/postgres-initdb.log" >&2; die "initdb failed"; }
    openssl rand -hex 24 | tr -d '\n' >"$PG_DIR/password.new"
    chmod 644 "$PG_DIR/password.new"
    mv -f "$PG_DIR/password.new" "$PG_DIR/password"
}

# pg_setup_role: after the first start of a fresh cluster.
pg_setup_role() {
    # A random hex password needs no quoting.
    printf "CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n" \
        "$PG_ROLE" "$(<"$PG_DIR/password")" "$PG_DATABASE" "$PG_ROLE" |
        postgres_psql -f - || die "could not create role $PG_ROLE and database $PG_DATABASE"
}

# pg_launch: pg_ctl start, wait until it accepts, record the postmaster as
# launch() records a daemon (RUN/postgres.pid, .cmdline, .ports).
pg_launch() {
    local bin pid
    bin=$(pg_bin)
    ensure_port_free "$PG_PORT" POPFERRY_TEST_PG_PORT
    # pg_ctl opens the log as $PG_USER, and LOG belongs to root.
    touch "$LOG/postgres.stderr"
    chown "$PG_USER:$PG_USER" "$LOG/postgres.stderr"
    # -w waits until the server accepts connections (it polls
    # postmaster.pid, ready in ~0.3 s here).  pg_ctl detaches the
    # postmaster (own session) itself.
    if ! as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$LOG/postgres.stderr" -w -t 30 -s start; then
        say "--- $LOG/postgres.stderr:"
        tail -n 20 "$LOG/postgres.stderr" >&2 || true
        die "postgres did not start on 127.0.0.1:$PG_PORT"
    fi
    pid=$(head -n 1 "$PG_DATA/postmaster.pid")
    [[ $pid =~ ^[0-9]+$ ]] || die "no PID in $PG_DATA/postmaster.pid"
    # What we check before signalling it later: the postmaster's argv as
    # pg_ctl exec'd it ("postgres -D DATA").
    # shellcheck disable=SC2002
    cat "/proc/$pid/cmdline" >"$RUN/postgres.cmdline"
    echo "$PG_PORT" >"$RUN/postgres.ports"
    echo "$pid" >"$RUN/postgres.pid"
    port_open "$PG_PORT" || die "postgres ($pid) runs but 127.0.0.1:$PG_PORT does not accept"
    say "started postgres ($pid) on $PG_PORT"
}

# postgres_stop [smart|fast|immediate]: by recorded PID, like stop_service,
# but with PostgreSQL's signals (what pg_ctl stop -m MODE sends): TERM is a
# "smart" shutdown that waits for every client to leave, which a daemon
# holding a pool never does, so stop_service's TERM-then-KILL would always
# end in a KILL of the postmaster, leaving its backends behind.  INT is
# "fast" (roll back, disconnect, checkpoint), QUIT "immediate" (no
# checkpoint: the next start runs crash recovery, like a power cut of the
# database host).
postgres_stop() {
    local mode=${1:-fast} sig pid
    case $mode in
    smart) sig=TERM ;;
    fast) sig=INT ;;
    immediate) sig=QUIT ;;
    *) die "postgres_stop: unknown mode $mode (smart, fast, immediate)" ;;
    esac
    if pid=$(running_pid postgres); then
        kill -"$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            cmdline_is "$pid" "$RUN/postgres.cmdline" || break
            sleep 0.1
        done
        if cmdline_is "$pid" "$RUN/postgres.cmdline"; then
            say "postgres ($pid) still up after $mode shutdown, sending QUIT"
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                cmdline_is "$pid" "$RUN/postgres.cmdline" || break
                sleep 0.1
            done
        fi
        cmdline_is "$pid" "$RUN/postgres.cmdline" && die "postgres ($pid) did not stop"
        for _ in $(seq 50); do
            port_open "$PG_PORT" || break
            sleep 0.1
        done
        say "stopped postgres ($pid, $mode)"
    elif [[ -e $RUN/postgres.pid ]]; then
        say "postgres not running (stale pid file removed)"
    fi
    rm -f "$RUN/postgres.pid"
}

# postgres_restart [fast|immediate]: the same cluster, the same port.
postgres_restart() {
    postgres_stop "${1:-fast}"
    pg_launch
}

postgres_start() {
    mkdir -p "$PG_DIR" "$PG_DIR/tls" "$RUN" "$LOG"
    chmod 755 "$PG_DIR"
    pg_conf >"$PG_DIR/postgresql.conf.new"
    pg_hba >"$PG_DIR/pg_hba.conf.new"
    local changed='' f
    for f in server.pem server.key; do
        cmp -s "$TLS/$f" "$PG_DIR/tls/$f" && continue
        install -m 600 -o "$PG_USER" -g "$PG_USER" "$TLS/$f" "$PG_DIR/tls/$f"
        changed=1
    done
    chmod 644 "$PG_DIR/tls/server.pem"
    if running_pid postgres >/dev/null && [[ -d $PG_DATA ]]; then
        if [[ -z $changed ]] && cmp -s "$PG_DIR/postgresql.conf.new" "$PG_DATA/postgresql.conf" &&
            cmp -s "$PG_DIR/pg_hba.conf.new" "$PG_DATA/pg_hba.conf"; then
            rm -f "$PG_DIR/postgresql.conf.new" "$PG_DIR/pg_hba.conf.new"
            return 0
        fi
        say "postgres config or certificate changed: restarting"
        postgres_stop fast
        pg_install_conf
        pg_launch
        return 0
    fi
    # Nothing of ours runs: a fresh cluster (a postmaster.pid left by a
    # killed server would otherwise block the start, and leftover rows
    # would leak into the next run's tests).
    pg_init
    pg_install_conf
    mkdir -p "$PG_SOCK"
    chown "$PG_USER:$PG_USER" "$PG_SOCK"
    chmod 700 "$PG_SOCK"
    pg_launch
    pg_setup_role
}

pg_install_conf() {
    local f
    for f in postgresql.conf pg_hba.conf; do
        install -m 600 -o "$PG_USER" -g "$PG_USER" "$PG_DIR/$f.new" "$PG_DATA/$f"
        rm -f "$PG_DIR/$f.new"
    done
}

postgres_env() {
    printf '%s\n' \
        "POPFERRY_TEST_PG_PORT=$PG_PORT" \
        "POPFERRY_TEST_PG_HOST=127.0.0.1" \
        "POPFERRY_TEST_PG_USER=$PG_ROLE" \
        "POPFERRY_TEST_PG_DATABASE=$PG_DATABASE" \
        "POPFERRY_TEST_PG_URL=postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/$PG_DATABASE" \
        "POPFERRY_TEST_PG_PASSWORD_FILE=$PG_DIR/password" \
        "POPFERRY_TEST_PG_CA=$TLS/ca.pem" \
        "POPFERRY_TEST_PG_CTL=$REPO_ROOT/scripts/lib/postgres.sh"
}

# postgres_migrate DATABASE: applies migrations/postgres/*.sql in order to
# DATABASE (made if missing, owner popferry), over TCP as popferry with
# verify-full, the way the daemon's runner is meant to (see the comment of
# 0001_ledger.sql): per step one transaction that takes an advisory lock
# (two instances starting at once: the second waits, then finds nothing to
# do), creates the version table if missing (only under that lock: two
# racing CREATE TABLE IF NOT EXISTS can still fail on a unique index of
# the catalog), and runs the step only if the version is the one before
# it.  A check that the SQL is valid, before the Rust runner exists.
postgres_migrate() {
    local db=${1:?database} bin n=0 f
    bin=$(pg_bin)
    [[ $db =~ ^[a-z_][a-z0-9_]*$ ]] || die "postgres_migrate: $db is not a plain database name"
    if [[ -z $(postgres_psql -tA -c "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
        postgres_psql -c "CREATE DATABASE $db OWNER $PG_ROLE"
    fi
    local conn="host=127.0.0.1 port=$PG_PORT dbname=$db user=$PG_ROLE sslmode=verify-full sslrootcert=$TLS/ca.pem"
    for f in "$REPO_ROOT"/migrations/postgres/[0-9][0-9][0-9][0-9]_*.sql; do
        n=$((n + 1))
        [[ ${f##*/} == "$(printf %04d "$n")"_* ]] || die "migrations/postgres: ${f##*/} is not step $n"
        {
            cat <<SQL
BEGIN;
SELECT pg_advisory_xact_lock(7466356) \\gset
CREATE TABLE IF NOT EXISTS popferry_schema (
    id      BIGINT CONSTRAINT popferry_schema_pkey PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL CHECK (version >= 0)
);
INSERT INTO popferry_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
SELECT version = $((n - 1)) AS due FROM popferry_schema \\gset
\\if :due
SQL
            cat "$f"
            printf '\n;UPDATE popferry_schema SET version = %d;\n\\endif\nCOMMIT;\n' "$n"
        } | PGPASSWORD=$(<"$PG_DIR/password") PGOPTIONS="-c client_min_messages=warning" \
            "$bin/psql" -X -q -v ON_ERROR_STOP=1 "$conn" -f - ||
            die "migration ${f##*/} failed on database $db"
        say "$db: ${f##*/} applied (or already there)"
    done
}

postgres_ports() {
    [[ $1 != postgres ]] || echo "$PG_PORT"
}

# ------------------------------------------------------- run on its own --

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    DIR=$(realpath -m -- "${POPFERRY_TEST_DIR:-/var/tmp/popferry-test-$(cksum <<<"$REPO_ROOT" | cut -d" " -f1)}")
    PG_DIR=$DIR/postgres PG_DATA=$DIR/postgres/data PG_SOCK=$DIR/postgres/sock
    RUN=$DIR/run LOG=$DIR/log TLS=$DIR/tls
    OWNER=postgres.sh
    say() { printf 'postgres: %s\n' "$*"; }
    die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }
    # shellcheck source=scripts/lib/daemons.sh
    . "$REPO_ROOT/scripts/lib/daemons.sh"
    # shellcheck source=scripts/lib/lab_tls.sh
    . "$REPO_ROOT/scripts/lib/lab_tls.sh"
    [[ $EUID -eq 0 ]] || die "must run as root"
    # ${1-} rather than ${1:-}: the mode arguments below are optional.
    cmd=${1-}
    shift || true
    case $cmd in
    start)
        postgres_install
        mkdir -p "$DIR"
        chmod 755 "$DIR"
        gen_tls
        postgres_start
        postgres_env | while IFS= read -r kv; do
            printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
        done >"$PG_DIR/env"
        say "ready; source $PG_DIR/env"
        ;;
    stop) postgres_stop "${1:-fast}" ;;
    restart) postgres_restart "${1:-fast}" ;;
    status)
        if pid=$(running_pid postgres); then
            printf '%-16s running  pid %-7s 127.0.0.1:%s\n' postgres "$pid" "$PG_PORT"
        else
            printf '%-16s stopped\n' postgres
            exit 3
        fi
        ;;
    env) postgres_env ;;
    psql) postgres_psql "$@" ;;
    migrate) postgres_migrate "${1:-popferry}" ;;
    *)
        echo "usage: $0 start|stop [fast|immediate]|restart [fast|immediate]|status|env|psql ARGS...|migrate [DATABASE]" >&2
        exit 2
        ;;
    esac
fi
