#!/usr/bin/env bash
# make bench-db: brisk's checkout rate on PostgreSQL (HTTP + gRPC payment +
# two transactions per order, load from a separate process) against
# pgbench's TPC-B-like transaction rate on the same server, in one run.
# Median of RUNS runs each. Needs PostgreSQL on 127.0.0.1:5432 (trust auth).
#
#   RUNS=3 DUR=10s bash bench/db.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
DUR=${DUR:-10s}
SECS=${DUR%s}
PG=${BRISK_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
SRV="taskset -c 0"
LOAD="taskset -c 1"
W=$(mktemp -d)
chmod 755 "$W"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS brisk_bench_pgbench" -c "DROP DATABASE IF EXISTS brisk_bench" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT
go build -o "$W/brisk" ./cmd/brisk

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS brisk_bench_pgbench" -c "CREATE DATABASE brisk_bench_pgbench" \
	-c "DROP DATABASE IF EXISTS brisk_bench" -c "CREATE DATABASE brisk_bench"
pgbench -q -i -s 1 "$PG/brisk_bench_pgbench" >/dev/null 2>&1

DB="$PG/brisk_bench?sslmode=disable"
"$W/brisk" seed --db "$DB" --admin-password bench-admin-pw --shopper-password bench-shopper-pw >/dev/null 2>&1
PP=$(free_port)
$SRV "$W/brisk" payment --listen "127.0.0.1:$PP" --log-level warn >/dev/null 2>&1 &
pids+=($!)
AP=$(free_port)
API=http://127.0.0.1:$AP
$SRV "$W/brisk" api --addr "127.0.0.1:$AP" --db "$DB" --payment-addr "127.0.0.1:$PP" --log-level warn \
	--rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off \
	--concurrency-limit off --telemetry=false >/dev/null 2>"$W/api.err" &
pids+=($!)
wait_http "$API/readyz"
TOKEN=$(curl -fsS "$API/v1/auth/login" -H 'Content-Type: application/json' -d '{"email":"shopper@brisk.test","password":"bench-shopper-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ADMIN=$(curl -fsS "$API/v1/auth/login" -H 'Content-Type: application/json' -d '{"email":"admin@brisk.test","password":"bench-admin-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for id in $(seq 1 200); do
	curl -fsS -o /dev/null -X PUT "$API/v1/admin/products/$id" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"available":100000000}'
done

p=(); c=()
for i in $(seq "$RUNS"); do
	p+=("$($LOAD pgbench -n -c 8 -j 1 -T "$SECS" "$PG/brisk_bench_pgbench" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3; exit}')")
	c+=("$(BENCH_TOKEN=$TOKEN BENCH_RUN="db$i-$RANDOM" CONNS=16 wrk_rps "$API" -s bench/checkout.lua)")
	echo "run $i: pgbench ${p[-1]} tps, brisk checkout ${c[-1]}/s" >&2
done
P=$(median "${p[@]}"); C=$(median "${c[@]}")
R=$(ratio "$C" "$P")
mkdir -p bench/results
OUT=bench/results/db-latest.md
{
	echo "## make bench-db — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $(go version | awk '{print $3}'), $(psql -tA "$PG/postgres" -c 'SHOW server_version'); median of $RUNS runs of $DUR; brisk and payment pinned to CPU 0, wrk and pgbench to CPU 1 (PostgreSQL unpinned)."
	echo
	echo "| figure | value |"
	echo "|---|---|"
	echo "| pgbench TPC-B-like, 8 clients (tps) | $P |"
	echo "| brisk checkouts on PostgreSQL, 16 connections (orders/s) | $C |"
	echo "| ratio brisk / pgbench (target >= 0.7) | $R |"
	echo
	echo "Raw runs: pgbench ${p[*]}; brisk ${c[*]}."
} | tee "$OUT"
