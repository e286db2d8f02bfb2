#!/usr/bin/env bash
# Measures brisk's latency-vs-load curve behind the NGINX edge (deploy/nginx)
# with 1, 2 and 3 API instances (PostgreSQL, Redis, one payment service),
# one `brisk load` report per step, then prints the capacity plan
# (`brisk capacity`): see docs/capacity.md.
#
#   bench/capacity.sh [OUT_DIR]        (default bench/results/capacity)
#
# Environment: INSTANCES ("1 2 3"), RATES (offered requests/s per step),
# STEP (length of a step), SCENARIO (brisk load scenario), PG_ADMIN (a
# postgres:// URL of a role that may create databases), REDIS_URL, KEEP (keep
# the instances' and NGINX's logs).
# Everything runs on this machine: the generator competes with what it
# measures for the same cores, so read the numbers as a lower bound.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-bench/results/capacity}
INSTANCES=${INSTANCES:-"1 2 3"}
RATES=${RATES:-"200 400 700 1000 1400 1800 2400 3000"}
STEP=${STEP:-10s}
SCENARIO=${SCENARIO:-shop}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx" >&2; exit 1; }

work=$(mktemp -d)
db=brisk_capacity_$$
pids=()
cleanup() {
	[ -f "$work/nginx/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	if [ -n "${KEEP:-}" ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$out"
rm -f "$out"/n*-r*.json "$out"/n*-r*.txt

echo "building brisk" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/brisk" ./cmd/brisk
B=$work/brisk
psql -q "$PG_ADMIN" -c "CREATE DATABASE $db" >/dev/null
dsn=$(echo "$PG_ADMIN" | sed -E "s#/[^/?]+(\?|$)#/$db\1#")
"$B" seed --db "$dsn" --products 10000 --argon2-memory 64 --argon2-time 1 >/dev/null

# Every server listens on a port the kernel picks (fixed ports collide with
# whatever else runs here); each prints its address when it serves.
addr_of() { # addr_of LOGFILE PATTERN: wait for the address a server prints
	for _ in $(seq 1 600); do
		a=$(sed -nE "s#^$2 [a-z]+://([0-9.:]+).*#\1#p" "$1" | head -n1)
		[ -n "$a" ] && { echo "$a"; return 0; }
		sleep 0.1
	done
	echo "no '$2' address in $1" >&2
	cat "$1" >&2
	return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"$B" payment --listen 127.0.0.1:0 --payment-latency 5ms --log-level warn >"$work/payment.log" 2>&1 &
pids+=($!)
pay=$(addr_of "$work/payment.log" payment:)

api_args=(--db "$dsn" --redis "$REDIS_URL" --redis-prefix "capacity-$$:" --payment-addr "$pay"
	--jwt-keys "$work/jwt-keys.json" --web=false --argon2-memory 64 --argon2-time 1
	--rate-limit-ip off --rate-limit-user off --login-limit-ip off --login-limit-account off
	--trusted-proxies 127.0.0.1/32 --log-level warn)
apis=()
for i in 1 2 3; do
	"$B" api --addr 127.0.0.1:0 "${api_args[@]}" >"$work/api-$i.log" 2>&1 &
	pids+=($!)
	apis+=("$(addr_of "$work/api-$i.log" api:)") # the first one writes the shared JWT key file
done

# The edge: deploy/nginx in a prefix, loopback listeners, a fresh certificate.
n=$work/nginx
mkdir -p "$n"/{logs,temp,cache,certs}
cp deploy/nginx/* "$n"/
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$n/certs/brisk.key" -out "$n/certs/brisk.crt" 2>/dev/null
http_port=$(free_port)
https_port=$(free_port)
sed -i -e "s/listen 80 default_server;/listen 127.0.0.1:$http_port default_server;/" \
	-e "s/listen 443 ssl http2 default_server;/listen 127.0.0.1:$https_port ssl http2 default_server;/" \
	-e '/listen \[::\]/d' "$n/brisk.conf"
user=""
[ "$(id -u)" = 0 ] && user="user root;"

for N in $INSTANCES; do
	{
		for pool in brisk_stable brisk_canary; do
			echo "upstream $pool {"
			echo "    zone $pool 64k;"
			echo "    least_conn;"
			for a in "${apis[@]:0:$N}"; do echo "    server $a max_fails=1 fail_timeout=3s;"; done
			echo "    keepalive 64;"
			echo "}"
		done
	} >"$n/upstreams.conf"
	rm -rf "$n/cache"/*
	nginx -p "$n/" -c nginx.conf -e "$n/logs/error.log" -g "$user" 2>/dev/null
	for _ in $(seq 1 50); do [ -f "$n/nginx.pid" ] && break; sleep 0.1; done
	# Warm-up (not recorded): connections, caches, the Go runtime.
	SSL_CERT_FILE=$n/certs/brisk.crt "$B" load --target "https://127.0.0.1:$https_port" --scenario "$SCENARIO" \
		--rate 200 --duration 5s --products 10000 --users 5 --progress off --run-id "cap-warm-n$N-$$" >/dev/null 2>&1 || true
	for R in $RATES; do
		echo "instances $N, $R/s for $STEP" >&2
		SSL_CERT_FILE=$n/certs/brisk.crt "$B" load --target "https://127.0.0.1:$https_port" --scenario "$SCENARIO" \
			--rate "$R" --duration "$STEP" --arrival poisson --products 10000 --users 20 --progress off \
			--run-id "cap-n$N-r$R-$$" --out "$out/n$N-r$R.json" >"$out/n$N-r$R.txt" 2>&1 || true
		# Far past saturation the next steps only measure the queue.
		if [ -f "$out/n$N-r$R.json" ] && grep -q "REGRESSION\|achieved" "$out/n$N-r$R.txt"; then
			achieved=$(sed -nE 's/.*: ([0-9.]+)\/s achieved.*/\1/p' "$out/n$N-r$R.txt" | head -n1)
			if [ -n "$achieved" ] && awk -v a="$achieved" -v r="$R" 'BEGIN { exit !(a < 0.8 * r) }'; then
				echo "  saturated ($achieved/s achieved): next fleet size" >&2
				break
			fi
		fi
	done
	kill -QUIT "$(cat "$n/nginx.pid")"
	sleep 1
done

"$B" capacity --dir "$out"
