#!/usr/bin/env bash
# Runs every test of nfp-gateway on this machine, after installing what a
# fresh Debian machine lacks (scripts/install-deps.sh). CI runs exactly this.
#
# The tests of the PostgreSQL store run on a private cluster started here on
# loopback (tests/pg/cluster.sh), which logs every statement: after a full
# run (no arguments), tests/pg/coverage.py checks that every SQL statement
# of the store ran on PostgreSQL too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

pg=$(mktemp -d /tmp/nfp-pg-test-XXXXXX)
chmod 755 "$pg"
trap 'bash tests/pg/cluster.sh stop "$pg/c" >/dev/null 2>&1 || true; rm -rf "$pg"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=$(bash tests/pg/cluster.sh start "$pg/c" "$port" </dev/null)
psql "$url" -XAtq -v ON_ERROR_STOP=1 \
  -c "ALTER SYSTEM SET log_statement = 'all'" \
  -c "ALTER SYSTEM SET log_parameter_max_length = 0" \
  -c "SELECT pg_reload_conf()" >/dev/null

NFP_TEST_POSTGRES="$url" cargo test --workspace --locked "$@"
if (($# == 0)); then
  python3 tests/pg/coverage.py "$pg/c/postgres.log"
fi
