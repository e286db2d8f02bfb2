#!/usr/bin/env bash
# Overload: brisk up (server on CPU 0) under the shop scenario of
# brisk load (CPU 1). First the capacity, with overload protection off:
# the goodput of the highest offered rate of a short ladder that is still
# served in full (goodput >= 95% of offered, < 1% failures: 5xx or no
# answer; a 4xx such as a sold-out 409 is an answer), i.e. the
# saturation throughput; with CAPACITY_BY=slo, also only while p99 stays
# within the SLO. Then 3x that rate for DUR, with overload protection
# on (the defaults: the request gate --max-active and the adaptive
# concurrency limit) and off, from the same script: goodput (answers
# that are not 5xx or failures) as a share of capacity, and the p99 of
# admitted requests against the SLO. The brisk load reports land in $OUT,
# the summary in $OUT/summary.txt.
#
#   DUR=60s bash bench/overload.sh
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
cd "$(dirname "$0")/.."
source bench/lib.sh
DUR=${DUR:-60s}
STEP=${STEP:-8s}
LADDER=${LADDER:-"1000 2000 3000 4000 5000 6000 7000 8000 10000 12000"}
SLO=${SLO:-250ms}       # p99 objective of admitted requests (the search journey's)
CAPACITY_BY=${CAPACITY_BY:-throughput}
UP_ARGS=${UP_ARGS:-} # extra flags of brisk up, in every run
FACTOR=${FACTOR:-3}
OUT=${OUT:-bench/results/overload}
SRV="taskset -c 0"
LOAD="taskset -c 1"
for tool in taskset curl python3; do
	command -v "$tool" >/dev/null || { echo "overload needs $tool" >&2; exit 2; }
done
mkdir -p "$OUT"
rm -f "$OUT"/*.json
exec > >(tee "$OUT/summary.txt") 2>&1

W=$(mktemp -d)
pid=""
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; pid=""; }
trap 'stop; rm -rf "$W"' EXIT
go build -o "$W/brisk" ./cmd/brisk

# up MODE: brisk up on a fresh data dir with overload protection as it
# comes (adaptive) or off.
up() {
	local protect=()
	[ "$1" = off ] && protect=(--concurrency-limit off --max-active 0)
	stop
	local port
	port=$(free_port)
	rm -rf "$W/data"
	$SRV "$W/brisk" up --addr "127.0.0.1:$port" --data-dir "$W/data" --products 10000 --web=false \
		--argon2-memory 64 --argon2-time 1 --log-level error "${protect[@]}" \
		--rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off $UP_ARGS \
		>"$W/up.out" 2>"$W/up.err" &
	pid=$!
	TARGET=http://127.0.0.1:$port
	wait_http "$TARGET/readyz"
}

# edge_p99: the p99 of admitted (non-5xx) requests as the server's edge
# measured them (the SLO's own SLI), interpolated within the classic
# buckets of brisk_http_request_duration_seconds, in ms.
edge_p99() {
	curl -fsS "$TARGET/metrics" | python3 -c '
import re, sys
cum = {}
for line in sys.stdin:
    m = re.match(r"brisk_http_request_duration_seconds_bucket\{(.*)\} (\S+)", line)
    if not m or "status_class=\"5xx\"" in m.group(1):
        continue
    le = re.search(r"le=\"([^\"]+)\"", m.group(1)).group(1)
    cum[float(le)] = cum.get(float(le), 0) + float(m.group(2))
bounds = sorted(cum)
total = cum[bounds[-1]]
target, prev_b, prev_c = 0.99 * total, 0.0, 0.0
for b in bounds:
    if cum[b] >= target:
        if b == float("inf"):
            print("> %.0f" % (prev_b * 1000)); break
        print("%.0f" % (1000 * (prev_b + (b - prev_b) * (target - prev_c) / max(1, cum[b] - prev_c)))); break
    prev_b, prev_c = b, cum[b]
'
}

# load RATE DURATION REPORT: one shop run.
load() {
	$LOAD "$W/brisk" load --target "$TARGET" --scenario shop --rate "$1" --duration "$2" \
		--connections 512 --max-inflight 20000 --timeout 10s --progress off --seed 7 --out "$3" >/dev/null || true
}

echo "capacity ladder (limit off, $STEP per step, by $CAPACITY_BY; SLO p99 <= $SLO):"
up off
load 200 3s "$W/warm.json"
capacity=0
for rate in $LADDER; do
	load "$rate" "$STEP" "$OUT/ladder-$rate.json"
	line=$(go run bench/overload/summarize.go -json -slo "$SLO" "$OUT/ladder-$rate.json")
	p99=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['admitted_p99_ms'])" "$line")
	goodput=$(python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['goodput']))" "$line")
	# Failures: 5xx answers and requests that got no answer. A 4xx is an
	# answer (the 409s of sold-out products among them), not a failure.
	errs=$(json "$OUT/ladder-$rate.json" "sum(v for k, v in j['total']['statuses'].items() if not k[:1] in '1234') / max(1, j['total']['requests'])")
	echo "  offered $rate/s: goodput $goodput/s, p99 ${p99} ms, failure rate $errs"
	ok=$(python3 -c "
import sys
p99, slo, errs, goodput, rate, by = float(sys.argv[1]), float(sys.argv[2].rstrip('ms')), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
print(int(errs < 0.01 and goodput >= 0.95 * rate and (by != 'slo' or p99 <= slo)))" "$p99" "$SLO" "$errs" "$goodput" "$rate" "$CAPACITY_BY")
	[ "$ok" = 1 ] || break
	capacity=$goodput
done
[ "$capacity" -gt 0 ] || { echo "no rate of the ladder was served in full; capacity unknown" >&2; exit 1; }
offered=$((capacity * FACTOR))
echo "capacity: $capacity/s; offering ${FACTOR}x = $offered/s for $DUR"

for limit in adaptive off; do
	up "$limit"
	load 200 3s "$W/warm.json"
	load "$offered" "$DUR" "$OUT/overload-$limit.json"
	echo "limit $limit:"
	go run bench/overload/summarize.go -capacity "$capacity" -slo "$SLO" "$OUT/overload-$limit.json" | sed 's/^/  /'
	echo "  admitted p99 at the server's edge (queueing in the client and the kernel excluded): $(edge_p99) ms"
done
