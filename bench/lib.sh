# Shared helpers of the bench scripts (sourced).

# json FILE EXPR: evaluates a Python expression over the JSON document j.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ratio A B with 3 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a/b }'; }

# wrk_rps URL [wrk args...]: successful requests per second of one wrk run
# (non-2xx answers are subtracted), pinned to the load core.
wrk_rps() {
	local url=$1; shift
	local out
	out=$($LOAD wrk -t1 -c"${CONNS:-64}" -d"$DUR" "$@" "$url")
	local total secs non2xx
	total=$(awk '/requests in/ {print $1}' <<<"$out")
	secs=$(awk '/requests in/ {gsub(/s,?/, "", $4); print $4}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	awk -v t="$total" -v s="$secs" -v n="${non2xx:-0}" 'BEGIN { printf "%.0f", (t-n)/s }'
}

# wait_http URL: waits until URL answers 200.
wait_http() {
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timeout waiting for $1" >&2
	return 1
}

# free_port: an unused TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
