#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback, for nfp-gateway's tests on its
# second store engine. Everything lives under one directory DIR: the cluster
# (DIR/data), its unix socket, its log (DIR/postgres.log). Nothing under /etc
# or /var/lib/postgresql is read or changed, no systemd, no pg_ctlcluster;
# the Debian package's own "main" cluster is never used. Several clusters run
# side by side (each its own DIR and port).
#
#   tests/pg/cluster.sh start DIR PORT   # prints postgres://nfp@127.0.0.1:PORT/nfp
#   tests/pg/cluster.sh status DIR       # prints the URL; exit 3 when stopped
#   tests/pg/cluster.sh stop DIR         # waits until the server is gone
#
# The server is the highest version under /usr/lib/postgresql/*/bin (the
# Debian package `postgresql`, which scripts/install-deps.sh installs).
# It listens on 127.0.0.1 only, with trust authentication (loopback and the
# socket in DIR), fsync on. The bootstrap superuser is `nfp` and owns the
# database `nfp`. The locale is C, so text compares and sorts byte by byte
# as in SQLite. `start` on a DIR that holds a cluster starts it again (on
# PORT); it refuses a PORT that something else listens on.
#
# initdb and postgres refuse to run as root: run by root, the cluster belongs
# to the `postgres` system user (created by the package) and DIR is chowned
# to it, so DIR's parents must let that user through (/tmp does). Run by any
# other user, the cluster is that user's.
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
  sed -n '9,11p' "$0" | sed 's/^#   //' >&2
  exit 2
}

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] \
    || die "no PostgreSQL server under /usr/lib/postgresql/*/bin; install the package postgresql (scripts/install-deps.sh)"
  echo "$bin"
}

# The user the cluster's programs run as: root hands them to `postgres`.
cluster_user() {
  if [ "$(id -u)" = 0 ]; then
    getent passwd postgres >/dev/null \
      || die "run as root, the cluster runs as the user postgres, which the package postgresql creates; it is missing"
    echo postgres
  else
    id -un
  fi
}

as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

url() { echo "postgres://nfp@127.0.0.1:$1/nfp"; }

running_port() {
  # pg_ctl status says whether the postmaster of DIR/data lives; its pid
  # file's fourth line is the port it listens on.
  local dir=$1 user
  [ -f "$dir/data/PG_VERSION" ] || return 1
  user=$(stat -c %U "$dir/data")
  as_user "$user" "$BIN/pg_ctl" status -D "$dir/data" >/dev/null 2>&1 || return 1
  sed -n 4p "$dir/data/postmaster.pid"
}

start() {
  local dir=$1 port=$2 user
  [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "not a port: $port"
  # The kernel's limit for a unix socket path is 107 bytes.
  ((${#dir} + ${#port} + 12 <= 107)) || die "$dir: too long for a unix socket path below it"
  user=$(cluster_user)

  local running
  if running=$(running_port "$dir"); then
    [ "$running" = "$port" ] || die "$dir: a cluster is running there on port $running"
    url "$port"
    return
  fi
  ! port_in_use "$port" || die "port $port on 127.0.0.1 is in use"

  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" != 0 ] || chown "$user:" "$dir"
  as_user "$user" test -w "$dir" \
    || die "$dir: the user $user cannot write there (its parents must let $user through)"

  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_user "$user" "$BIN/initdb" -D "$dir/data" -U nfp --auth=trust --no-locale \
      --encoding=UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed (log: $dir/initdb.log)"; }
    cat >"$dir/data/pg_hba.conf" <<'EOF'
# tests/pg/cluster.sh: trust on the socket in DIR and on 127.0.0.1, nothing else.
local  all  all                 trust
host   all  all  127.0.0.1/32   trust
EOF
    echo "include 'nfp.conf'" >>"$dir/data/postgresql.conf"
  fi
  # Written at every start: the port may differ from the last one.
  cat >"$dir/data/nfp.conf" <<EOF
# tests/pg/cluster.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
  [ "$(id -u)" != 0 ] || chown "$user:" "$dir/data/pg_hba.conf" "$dir/data/nfp.conf"

  as_user "$user" "$BIN/pg_ctl" start -w -t 60 -s -D "$dir/data" -l "$dir/postgres.log" \
    || { tail -n 20 "$dir/postgres.log" >&2; die "the server did not start (log: $dir/postgres.log)"; }

  local exists
  exists=$("$BIN/psql" -h "$dir" -p "$port" -U nfp -d postgres -XAtq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'nfp'")
  [ "$exists" = 1 ] || "$BIN/psql" -h "$dir" -p "$port" -U nfp -d postgres -Xq \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE nfp OWNER nfp" >/dev/null
  url "$port" >"$dir/url"
  url "$port"
}

stop() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] || return 0
  running_port "$dir" >/dev/null || return 0
  as_user "$(stat -c %U "$dir/data")" "$BIN/pg_ctl" stop -w -t 60 -s -m fast -D "$dir/data"
}

status() {
  local dir=$1 port
  port=$(running_port "$dir") || { echo "stopped"; exit 3; }
  url "$port"
}

(($# >= 2)) || usage
BIN=$(pg_bin)
dir=$(realpath -m -- "$2")
case "$1" in
  start) (($# == 3)) || usage; start "$dir" "$3" ;;
  stop) (($# == 2)) || usage; stop "$dir" ;;
  status) (($# == 2)) || usage; status "$dir" ;;
  *) usage ;;
esac
