#!/usr/bin/env bash
# Latency of "create listing" over HTTP: a release `bozor serve` on a scratch database, driven by
# wrk with 32 connections. Usage: bench/http.sh [seconds]   (needs cargo build --release, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
admin="postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/postgres"
db="bozor_bench_http"
addr="127.0.0.1:18081"
psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
# One seller sends everything from one address: lift the per-user and per-IP limits, which
# would otherwise answer most requests with 429 (the limiter itself still runs on every one).
BOZOR_TOKEN="$(./target/release/bozor token --user 5f0c6c1e-3f7a-4c8e-9d2b-1a2b3c4d5e6f --role seller --plan premium --minutes 60)"
export BOZOR_TOKEN
BOZOR_DATABASE_URL="postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/$db" BOZOR_HTTP_ADDR="$addr" RUST_LOG=warn \
  BOZOR_RATE_COMMANDS_PER_USER=1000000 BOZOR_RATE_COMMANDS_PER_IP=1000000 \
  ./target/release/bozor serve &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.2; done
# Warm up first: the pool opens its connections and statements get prepared.
wrk -t2 -c32 -d5s -s bench/create-listing.lua "http://$addr" >/dev/null
wrk -t2 -c32 -d"${secs}s" --latency -s bench/create-listing.lua "http://$addr"
echo "listings created: $(psql "postgres://postgres@127.0.0.1:${BOZOR_PG_PORT:-55432}/$db" -Atc "SELECT count(*) FROM events")"
