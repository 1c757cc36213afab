#!/usr/bin/env bash
# The API (web) and service suites again, with every test instance's state in PostgreSQL
# instead of SQLite: one throw-away cluster (initdb into a temporary directory, 127.0.0.1
# only, as the postgres user when run as root), a new database per test instance
# (MAMORI_TEST_POSTGRES_URL, read by mamori_testkit::postgres::suite_database), removed at the
# end. Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL's server binaries are not installed (apt-get install postgresql)" >&2
  exit 1
fi
dir=$(mktemp -d)
as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$dir/db" -A trust -U postgres >/dev/null
# Durability is tested elsewhere (store/tests/pg_*.rs); these suites test behaviour, so the
# cluster does not fsync. Each test instance holds a writer and a few reader connections.
"${as[@]}" "$bin/pg_ctl" -D "$dir/db" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

MAMORI_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port" \
  cargo test --locked -p mamori-web -p mamori-service "$@"
# The store's own query tests (indexes against a naive scan) on the same server.
MAMORI_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port" \
  cargo test --locked -p mamori-store --test queries_match_brute_force --test transaction_search "$@"
