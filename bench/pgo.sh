#!/usr/bin/env bash
# make pgo: the CPU profile that Go's profile-guided optimization builds
# brisk with (cmd/brisk/default.pgo, picked up by go build, go run and the
# Dockerfile). It profiles brisk up (built without PGO, telemetry on, rate
# limits off so that the load reaches the handlers) for PROFILE seconds
# under a storefront's peak mix: the shopper scenario (browse, search,
# cart, login, checkout) from brisk load, plus cached product and listing
# GETs from wrk, the bulk of a store's traffic. Regenerate it when the hot
# paths change; a stale profile costs some of the gain, never correctness.
#
#   PROFILE=40 bash bench/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
PROFILE=${PROFILE:-40}
for tool in wrk curl; do
	command -v "$tool" >/dev/null || { echo "pgo needs $tool (apt-get install -y wrk curl)" >&2; exit 2; }
done
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
go build -pgo=off -o "$W/brisk" ./cmd/brisk
P=$(free_port)
A=$(free_port)
"$W/brisk" up --addr "127.0.0.1:$P" --admin-addr "127.0.0.1:$A" --data-dir "$W/data" --admin-password pgo-admin-pw \
	--shopper-password pgo-shopper-pw --rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off \
	--log-level warn >"$W/up.out" 2>"$W/up.err" &
pids+=($!)
wait_http "http://127.0.0.1:$P/readyz"
secs=$((PROFILE + 6))
"$W/brisk" load --target "http://127.0.0.1:$P" --scenario shop --users 50 --rate 600 --duration "${secs}s" --out "$W/shop.json" >/dev/null 2>&1 &
pids+=($!)
wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$P/v1/products/42" >/dev/null &
pids+=($!)
wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$P/v1/products?category=candles" >/dev/null &
pids+=($!)
sleep 3
curl -fsS -o "$W/cpu.pprof" "http://127.0.0.1:$A/debug/pprof/profile?seconds=$PROFILE"
mv "$W/cpu.pprof" cmd/brisk/default.pgo
echo "wrote cmd/brisk/default.pgo ($(wc -c <cmd/brisk/default.pgo) bytes, $PROFILE s of brisk up under the shopper mix and cached GETs)" >&2
