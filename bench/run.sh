#!/usr/bin/env bash
# make bench: brisk measured as ratios against the limits of this machine,
# in one run: a bare net/http server answering the same bytes, nginx
# serving them as a static file, and brisk load against wrk. Servers run
# on CPU 0, load generators on CPU 1; each figure is the median of RUNS
# runs (the cached GET rows: of GET_RUNS short rounds). Writes
# bench/results/latest.md (+ a dated copy) and prints it.
#
#   RUNS=3 DUR=8s bash bench/run.sh
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
DUR=${DUR:-8s}
SRV="taskset -c 0"
LOAD="taskset -c 1"
for tool in wrk nginx taskset curl python3; do
	command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install -y wrk nginx util-linux curl python3)" >&2; exit 2; }
done

W=$(mktemp -d)
chmod 755 "$W" # nginx workers run as an unprivileged user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
go build -o "$W/brisk" ./cmd/brisk
go build -o "$W/bare" ./bench/bare

BP=$(free_port)
BRISK=http://127.0.0.1:$BP
$SRV "$W/brisk" up --addr "127.0.0.1:$BP" --data-dir "$W/data" --admin-password bench-admin-pw \
	--shopper-password bench-shopper-pw --rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off --log-level warn \
	>"$W/up.out" 2>"$W/up.err" &
pids+=($!)
wait_http "$BRISK/readyz"
curl -fsS "$BRISK/v1/products/42" -o "$W/product.json"

# The same with telemetry off (metrics, tracing, access logs), for its overhead.
TP=$(free_port)
BRISK_OFF=http://127.0.0.1:$TP
$SRV "$W/brisk" up --addr "127.0.0.1:$TP" --data-dir "$W/data-off" --admin-password bench-admin-pw \
	--shopper-password bench-shopper-pw --rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off --log-level warn \
	--telemetry=false >"$W/up-off.out" 2>"$W/up-off.err" &
pids+=($!)
wait_http "$BRISK_OFF/readyz"

XP=$(free_port) # chosen after brisk's own listeners are taken
$SRV "$W/bare" -addr "127.0.0.1:$XP" -file "$W/product.json" &
pids+=($!)
wait_http "http://127.0.0.1:$XP/"

# The bare server again, sending the header fields of brisk's cached
# product GET too (static values of the same sizes; Date, Content-Type
# and Content-Length it sends anyway): figure 1b, what brisk's own work
# costs beyond net/http's writing of the same response.
curl -fsS -D "$W/fields.txt" -o /dev/null "$BRISK/v1/products/42"
fields=()
while IFS= read -r line; do
	line=${line%$'\r'}
	case ${line,,} in
	http/* | "" | date:* | content-type:* | content-length:*) ;;
	*) fields+=(-header "$line") ;;
	esac
done <"$W/fields.txt"
HP=$(free_port)
$SRV "$W/bare" -addr "127.0.0.1:$HP" -file "$W/product.json" "${fields[@]}" &
pids+=($!)
wait_http "http://127.0.0.1:$HP/"

NP=$(free_port)
mkdir -p "$W/nginx/html" "$W/nginx/logs"
cp "$W/product.json" "$W/nginx/html/product.json"
cat >"$W/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	default_type application/json;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NP;
		root $W/nginx/html;
		location / { try_files /product.json =404; }
	}
}
NGINX
$SRV nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$NP/"

echo "warming up..." >&2
$LOAD wrk -t1 -c16 -d2s "$BRISK/v1/products/42" >/dev/null
$LOAD wrk -t1 -c16 -d2s "$BRISK_OFF/v1/products/42" >/dev/null

# 1, 1b + 2: cached product GET, brisk vs bare vs nginx vs bare with
# brisk's fields. GET_RUNS rounds of one short run each, back to back,
# the order rotating from round to round (a run's place in the sequence
# moves its figure by several per cent here; 8 rounds put each server in
# each place twice); each ratio is the median of the rounds' ratios, so
# that the machine's slow spells, which last seconds, cancel within a
# round.
GET_RUNS=${GET_RUNS:-8}
GET_DUR=${GET_DUR:-4s}
b=(); x=(); n=(); h=(); rb=(); rn=(); rh=()
for i in $(seq "$GET_RUNS"); do
	for j in 0 1 2 3; do
		case $(((i + j) % 4)) in
		1) b+=("$(DUR=$GET_DUR wrk_rps "$BRISK/v1/products/42")") ;;
		2) x+=("$(DUR=$GET_DUR wrk_rps "http://127.0.0.1:$XP/v1/products/42")") ;;
		3) n+=("$(DUR=$GET_DUR wrk_rps "http://127.0.0.1:$NP/v1/products/42")") ;;
		0) h+=("$(DUR=$GET_DUR wrk_rps "http://127.0.0.1:$HP/v1/products/42")") ;;
		esac
	done
	rb+=("$(ratio "${b[-1]}" "${x[-1]}")"); rn+=("$(ratio "${b[-1]}" "${n[-1]}")"); rh+=("$(ratio "${b[-1]}" "${h[-1]}")")
	echo "round $i: brisk ${b[-1]}/s bare ${x[-1]}/s nginx ${n[-1]}/s bare+fields ${h[-1]}/s (ratios ${rb[-1]} ${rn[-1]} ${rh[-1]})" >&2
done
B_RPS=$(median "${b[@]}"); X_RPS=$(median "${x[@]}"); N_RPS=$(median "${n[@]}"); H_RPS=$(median "${h[@]}")
R1=$(median "${rb[@]}"); R2=$(median "${rn[@]}"); R1B=$(median "${rh[@]}")

# 7: telemetry overhead, brisk with telemetry on vs off: TPAIRS pairs of
# short runs back to back, the order alternating (on this machine the
# first run of a pair is measurably slower), the median of the pairs'
# overheads.
TPAIRS=${TPAIRS:-16}
o=(); t=(); tr=()
for i in $(seq "$TPAIRS"); do
	if ((i % 2)); then
		t+=("$(DUR=3s wrk_rps "$BRISK/v1/products/42")"); o+=("$(DUR=3s wrk_rps "$BRISK_OFF/v1/products/42")")
	else
		o+=("$(DUR=3s wrk_rps "$BRISK_OFF/v1/products/42")"); t+=("$(DUR=3s wrk_rps "$BRISK/v1/products/42")")
	fi
	tr+=("$(awk -v on="${t[-1]}" -v off="${o[-1]}" 'BEGIN { printf "%.1f", 100 * (1 - on / off) }')")
	echo "pair $i: telemetry on ${t[-1]}/s, off ${o[-1]}/s (overhead ${tr[-1]}%)" >&2
done
T_RPS=$(median "${t[@]}"); O_RPS=$(median "${o[@]}"); T_OVH=$(median "${tr[@]}")

# 3: p99 at 50% of the bare server's capacity, brisk vs bare, same rate.
HALF=$(awk -v r="$X_RPS" 'BEGIN { printf "%d", r/2 }')
bp=(); xp=()
for i in $(seq "$RUNS"); do
	$LOAD "$W/brisk" load --target "$BRISK" --scenario product --products 1000 --rate "$HALF" --duration "$DUR" --out "$W/p-brisk.json" >/dev/null || true
	$LOAD "$W/brisk" load --target "http://127.0.0.1:$XP" --scenario product --products 1000 --rate "$HALF" --duration "$DUR" --out "$W/p-bare.json" >/dev/null || true
	bp+=("$(json "$W/p-brisk.json" "j['total']['latency']['p99_ns']/1e6")")
	xp+=("$(json "$W/p-bare.json" "j['total']['latency']['p99_ns']/1e6")")
	echo "run $i at $HALF/s: p99 brisk ${bp[-1]} ms, bare ${xp[-1]} ms" >&2
done
B_P99=$(median "${bp[@]}"); X_P99=$(median "${xp[@]}")

# 4: embedded checkout throughput, and its p99 at half that rate.
TOKEN=$(curl -fsS "$BRISK/v1/auth/login" -H 'Content-Type: application/json' -d '{"email":"shopper@brisk.test","password":"bench-shopper-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ADMIN=$(curl -fsS "$BRISK/v1/auth/login" -H 'Content-Type: application/json' -d '{"email":"admin@brisk.test","password":"bench-admin-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for id in $(seq 1 200); do
	curl -fsS -o /dev/null -X PUT "$BRISK/v1/admin/products/$id" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d '{"available":100000000}'
done
c=()
for i in $(seq "$RUNS"); do
	c+=("$(BENCH_TOKEN=$TOKEN BENCH_RUN="r$i-$RANDOM" CONNS=16 wrk_rps "$BRISK" -s bench/checkout.lua)")
	echo "run $i: checkout ${c[-1]}/s" >&2
done
C_RPS=$(median "${c[@]}")
CHALF=$(awk -v r="$C_RPS" 'BEGIN { printf "%d", (r/2 < 1 ? 1 : r/2) }')
cp99=()
for i in $(seq "$RUNS"); do
	$LOAD "$W/brisk" load --target "$BRISK" --scenario checkout --products 200 --users 20 --rate "$CHALF" --duration "$DUR" --out "$W/c.json" >/dev/null || true
	cp99+=("$(json "$W/c.json" "j['total']['latency']['p99_ns']/1e6")")
	echo "run $i at $CHALF/s: checkout p99 ${cp99[-1]} ms" >&2
done
C_P99=$(median "${cp99[@]}")

# 5: the shopper mix: highest rate with p99 < 200 ms and errors < 0.1%.
SHOP_OK=0
for rate in 100 200 400 800 1200 1600 2400 3200 4800; do
	if $LOAD "$W/brisk" load --target "$BRISK" --scenario shop --users 50 --rate "$rate" --duration "$DUR" \
		--budget 'all:p99<200ms,errors<0.1%' --out "$W/shop.json" >/dev/null 2>&1; then
		SHOP_OK=$rate
		echo "shop mix at $rate/s: within budget" >&2
	else
		echo "shop mix at $rate/s: budget broken" >&2
		break
	fi
done

# 6: brisk load's own top rate vs wrk's, against the bare server.
l=()
for i in $(seq "$RUNS"); do
	$LOAD "$W/brisk" load --target "http://127.0.0.1:$XP" --scenario product --products 1000 --rate 200000 --connections 64 --duration "$DUR" --out "$W/l.json" >/dev/null || true
	l+=("$(json "$W/l.json" "round(sum(v for k,v in j['total']['statuses'].items() if k.startswith('2'))/(j['duration_ns']/1e9))")")
	echo "run $i: brisk load top ${l[-1]}/s" >&2
done
L_RPS=$(median "${l[@]}")

R3=$(ratio "$B_P99" "$X_P99")
R4=$(ratio "$C_RPS" "$X_RPS"); R6=$(ratio "$L_RPS" "$X_RPS")
pass() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { if (v == "n/a") { print "n/a"; exit } ok = (op == ">=") ? v >= t : v <= t; print ok ? "yes" : "no" }'; }
mkdir -p bench/results
OUT=bench/results/latest.md
{
	echo "## make bench — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), $(go version | awk '{print $3}'), servers pinned to CPU 0, load to CPU 1; wrk -t1 -c64. Rows 1, 1b and 2: medians of $GET_RUNS rounds of $GET_DUR (ratio: the median of the rounds' ratios); the others: medians of $RUNS runs of $DUR."
	echo
	echo "| # | figure | brisk | baseline | ratio | target | met |"
	echo "|---|---|---|---|---|---|---|"
	echo "| 1 | cached product GET, req/s vs bare net/http | $B_RPS | $X_RPS | $R1 | >= 0.85 | $(pass "$R1" ">=" 0.85) |"
	echo "| 1b | the same vs the bare server sending brisk's header fields too (brisk's own work; no target) | $B_RPS | $H_RPS | $R1B | | |"
	echo "| 2 | cached product GET, req/s vs nginx static file | $B_RPS | $N_RPS | $R2 | >= 0.8 | $(pass "$R2" ">=" 0.8) |"
	echo "| 3 | p99 at 50% of bare capacity ($HALF req/s), ms | $B_P99 | $X_P99 | $R3 | <= 1.5 | $(pass "$R3" "<=" 1.5) |"
	echo "| 4a | embedded checkout req/s vs bare req/s | $C_RPS | $X_RPS | $R4 | >= 0.15 | $(pass "$R4" ">=" 0.15) |"
	echo "| 4b | checkout p99 at half its top rate ($CHALF/s), ms | $C_P99 | | | <= 25 | $(pass "$C_P99" "<=" 25) |"
	echo "| 5 | shopper mix: highest rate with p99 < 200 ms, errors < 0.1% | $SHOP_OK req/s | | | | |"
	echo "| 6 | brisk load top rate vs wrk (bare server), req/s | $L_RPS | $X_RPS | $R6 | >= 0.7 | $(pass "$R6" ">=" 0.7) |"
	echo "| 7 | telemetry overhead on the cached product GET: 1 - on/off, % (median of $TPAIRS alternating pairs of 3 s) | $T_RPS | $O_RPS (off) | $T_OVH% | < 5% | $(pass "$T_OVH" "<=" 5) |"
	echo
	echo "Raw runs: brisk ${b[*]}; bare ${x[*]}; nginx ${n[*]}; bare with brisk's fields ${h[*]}; ratios to bare ${rb[*]}, to nginx ${rn[*]}, to bare with fields ${rh[*]}; telemetry on ${t[*]}, off ${o[*]} (overhead ${tr[*]} %); p99 brisk ${bp[*]}, bare ${xp[*]}; checkout ${c[*]}, p99 ${cp99[*]}; brisk load ${l[*]}."
} | tee "$OUT"
cp "$OUT" "bench/results/$(date -u +%Y%m%dT%H%M).md"
