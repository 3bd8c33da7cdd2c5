#!/usr/bin/env bash
# Throwaway PostgreSQL for the rsc_db tests, listening only on 127.0.0.1.
#
#   eval "$(scripts/pg-test-server.sh)"      # start (or reuse) it; exports RSC_TEST_PG_URL
#   scripts/pg-test-server.sh stop           # stop it and delete its data directory
#   scripts/pg-test-server.sh status         # exit 0 if it is running
#   scripts/pg-test-server.sh restart        # pg_ctl restart -m fast (fault tests)
#
# Environment: RSC_PG_PORT (default 54329; the next free port is used if taken by something
# else), RSC_PG_DIR (default $TMPDIR/rsc-pg-test-<uid>). If no initdb is found (PATH, then
# /usr/lib/postgresql/*/bin) the Debian package `postgresql` is installed with apt-get.
# initdb refuses to run as root: as root the server runs as the OS user `postgres` (created if
# missing). Progress goes to stderr; stdout carries only the export line.
set -euo pipefail

ACTION="${1:-start}"
BASE_DIR="${RSC_PG_DIR:-${TMPDIR:-/tmp}/rsc-pg-test-$(id -u)}"
DATA_DIR="$BASE_DIR/data"
PORT_FILE="$BASE_DIR/port"
LOG_FILE="$BASE_DIR/server.log"
DB_NAME="rsc_test"

say() { echo "pg-test-server: $*" >&2; }

find_bindir() {
    local d
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    # Highest installed major version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    say "initdb not found; installing PostgreSQL with apt-get"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { say "not root and no sudo: cannot install"; exit 1; }
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql >&2
}

# Run a command as the server's OS user (postgres when we are root).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

ensure_owner_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id postgres >/dev/null 2>&1; then
        say "creating OS user postgres"
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres \
            || adduser --system --no-create-home --group postgres >&2
    fi
}

port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

is_running() {
    [ -f "$DATA_DIR/postmaster.pid" ] && [ -n "${BINDIR:-}" ] \
        && as_owner "$BINDIR/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

print_url() {
    echo "export RSC_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$(cat "$PORT_FILE")/$DB_NAME"
}

BINDIR="$(find_bindir || true)"

case "$ACTION" in
stop)
    if is_running; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2
    fi
    rm -rf "$BASE_DIR"
    say "stopped"
    exit 0
    ;;
status)
    if is_running; then print_url; exit 0; fi
    exit 1
    ;;
restart)
    # A fast restart of the running server (fault tests: connections drop for ~1-2 s).
    is_running || { say "not running"; exit 1; }
    as_owner "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -m fast -w -t 60 restart >&2
    say "restarted"
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 [start|stop|status|restart]" >&2
    exit 2
    ;;
esac

if [ -z "$BINDIR" ]; then
    install_postgres
    BINDIR="$(find_bindir)" || { say "initdb still not found after installing"; exit 1; }
fi

if is_running; then
    say "reusing the server in $DATA_DIR"
    print_url
    exit 0
fi

ensure_owner_user
mkdir -p "$BASE_DIR"
chmod 755 "$BASE_DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$BASE_DIR"

if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
    rm -rf "$DATA_DIR"
    say "initdb in $DATA_DIR ($BINDIR)"
    as_owner "$BINDIR/initdb" -D "$DATA_DIR" -U postgres --auth=trust -E UTF8 \
        --no-instructions >&2
fi

port="${RSC_PG_PORT:-54329}"
while ! port_free "$port"; do
    port=$((port + 1))
done
as_owner sh -c "echo $port > '$PORT_FILE'"

say "starting on 127.0.0.1:$port"
as_owner "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $BASE_DIR -c fsync=off -c full_page_writes=off" start >&2 \
    || { cat "$LOG_FILE" >&2 || true; exit 1; }

if ! as_owner "$BINDIR/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_owner "$BINDIR/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME"
fi
print_url
