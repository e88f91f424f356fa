#!/usr/bin/env bash
# Measures appends against their ceiling on a scratch database (dropped and recreated):
#  1. pgbench: 32 clients, a plain single-row INSERT transaction into an events-shaped table;
#  2. bozor bench append: 32 writers through the real append path.
# Usage: bench/append.sh [seconds]   (needs a release build: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
admin="postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/postgres"
db="bozor_bench"
psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql "postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/$db" -q -f bench/pgbench-setup.sql
echo "pgbench ceiling:"
pgbench -h 127.0.0.1 -p "${BOZOR_PG_PORT:-55432}" -U postgres -n -M prepared -c 32 -j 2 -T "$secs" -f bench/pgbench-insert.sql "$db" 2>&1 | grep -E "^tps|latency average"
echo "bozor bench append:"
BOZOR_DATABASE_URL="postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/$db" RUST_LOG=warn ./target/release/bozor bench append --writers 32 --seconds "$secs"
