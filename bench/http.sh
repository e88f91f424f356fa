#!/usr/bin/env bash
# Latency of "create listing" over HTTP: a release `bozor serve` on a scratch database, driven by
# wrk with 32 connections. Usage: bench/http.sh [seconds]   (needs cargo build --release, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
admin="postgres://postgres@127.0.0.1:5432/postgres"
db="bozor_bench_http"
addr="127.0.0.1:18081"
psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
BOZOR_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" BOZOR_HTTP_ADDR="$addr" RUST_LOG=warn \
  ./target/release/bozor serve &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.2; done
# Warm up first: the pool opens its connections and statements get prepared.
wrk -t2 -c32 -d5s -s bench/create-listing.lua "http://$addr" >/dev/null
wrk -t2 -c32 -d"${secs}s" --latency -s bench/create-listing.lua "http://$addr"
echo "listings created: $(psql "postgres://postgres@127.0.0.1:5432/$db" -Atc "SELECT count(*) FROM events")"
