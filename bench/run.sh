#!/usr/bin/env bash
# bench/run.sh: weft vs a direct connection, HAProxy and nginx, two proxies
# in a row (client sidecar -> server sidecar -> backend), in one run.
# What it measures and how to read the output: bench/README.md.
#
# Knobs (environment, defaults in brackets): BENCH_DURATION [10] seconds per
# throughput run, BENCH_WARMUP [3] seconds of warm-up, BENCH_CONNS [50] wrk
# connections, BENCH_THREADS [2] wrk threads, BENCH_RATE [1000] fixed rate of
# the latency runs, BENCH_LAT_REQUESTS [10000] measured requests per latency
# run, BENCH_LAT_ROUNDS [7] alternating latency rounds of
# BENCH_LAT_ROUND_REQUESTS [3000] requests, BENCH_CLUSTERS [1000] clusters in the idle-memory config,
# BENCH_RESULTS [bench/RESULTS.md] where the report goes.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
ROOT=$PWD

NCLUSTERS=${BENCH_CLUSTERS:-1000}
RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
H2_CLIENTS=10
H2_STREAMS=10

OUT=$ROOT/bench/out
LOGS=$OUT/logs
BIN=$OUT/bin

# Fixed loopback ports.
BACKEND_H1=28080 BACKEND_H2C=28081 BACKEND_GRPC=28082
WEFT_A=28100 WEFT_B=28101 WEFT_ADMIN_A=28190 WEFT_ADMIN_B=28191
WEFT_H2C_A=28110 WEFT_H2C_B=28111 WEFT_GRPC_A=28120 WEFT_GRPC_B=28121
WEFT_ADMIN_H2A=28192 WEFT_ADMIN_H2B=28193 WEFT_ADMIN_GA=28195 WEFT_ADMIN_GB=28196
WEFT_IDLE=28130 WEFT_ADMIN_IDLE=28194
HAPROXY_A=28200 HAPROXY_B=28201
NGINX_A=28300 NGINX_B=28301

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# bench_h2c SETUP PORT PIDS...: h2load throughput and loadgen latency.
bench_h2c() {
	local setup=$1 port=$2
	shift 2
	local url=http://127.0.0.1:$port/
	measure_proxy h2c "$setup" idle "$@"
	timeout $((WARM + 30)) h2load -c "$H2_CLIENTS" -m "$H2_STREAMS" -D "$WARM" "$url" >/dev/null 2>&1 || true
	measure_proxy h2c "$setup" before "$@"
	log "h2c/$setup: throughput ${DUR}s, h2load -c $H2_CLIENTS -m $H2_STREAMS"
	timeout $((DUR + 30)) h2load -c "$H2_CLIENTS" -m "$H2_STREAMS" -D "$DUR" "$url" >"$LOGS/h2load-$setup.txt" 2>&1 &
	local h2=$!
	sleep "$(calc %.1f "$DUR * 0.6")"
	measure_proxy h2c "$setup" load "$@"
	wait "$h2" || note "h2c/$setup: h2load exited $?"
	measure_proxy h2c "$setup" after "$@"
	local f=$LOGS/h2load-$setup.txt
	R[h2c.$setup.rps]=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$f" | awk '{printf "%.0f", $1}')
	local req codes
	req=$(grep '^requests:' "$f" || true)
	codes=$(grep '^status codes:' "$f" || true)
	log "h2c/$setup: ${R[h2c.$setup.rps]:-?} req/s; $req; $codes"
	if ! grep -q ' 0 failed, 0 errored, 0 timeout' <<<"$req" || ! grep -q ', 0 3xx, 0 4xx, 0 5xx' <<<"$codes"; then
		note "h2c/$setup: h2load reported failures: $req; $codes"
	fi
	latency h2c "$setup" h2c "$url" "$@"
}

# bench_grpc SETUP PORT PIDS...: closed-loop throughput and fixed-rate latency
# of grpc.health.v1.Health/Check.
bench_grpc() {
	local setup=$1 port=$2
	shift 2
	local target=127.0.0.1:$port line
	measure_proxy grpc "$setup" idle "$@"
	measure_proxy grpc "$setup" before "$@"
	log "grpc/$setup: throughput ${DUR}s after ${WARM}s warm-up, 100 concurrent over 10 connections"
	timeout $((WARM + DUR + 30)) "$BIN/loadgen" -mode grpc -target "$target" -rate 0 \
		-warmup-duration "${WARM}s" -duration "${DUR}s" -c 100 -conns 10 \
		>"$LOGS/grpc-tput-$setup.txt" 2>"$LOGS/grpc-tput-$setup.err" &
	local lg=$!
	sleep "$(calc %.1f "$WARM + $DUR * 0.6")"
	measure_proxy grpc "$setup" load "$@"
	wait "$lg" || note "grpc/$setup: throughput run failed: $(tail -n 2 "$LOGS/grpc-tput-$setup.err" | tr '\n' ' ')"
	measure_proxy grpc "$setup" after "$@"
	line=$(cat "$LOGS/grpc-tput-$setup.txt")
	R[grpc.$setup.rps]=$(kv rate "$line" | awk '{printf "%.0f", $1}')
	[[ $(kv errors "$line") == 0 ]] || note "grpc/$setup: throughput-run errors: $line $(head -n 1 "$LOGS/grpc-tput-$setup.err")"
	log "grpc/$setup: ${R[grpc.$setup.rps]:-?} req/s"
	latency grpc "$setup" grpc "$target" "$@"
}

# weft_many_clusters FILE N: one listener (to the first cluster) and N STATIC
# clusters, each with its own endpoint address.
weft_many_clusters() {
	local file=$1 n=$2 i
	weft_bootstrap "$file.head" "idle $WEFT_IDLE $BACKEND_H1 0"
	{
		cat "$file.head"
		for ((i = 1; i < n; i++)); do
			cluster_yaml "svc-$i" "127.1.$((i / 250)).$((i % 250 + 1))" 8080 0
		done
	} >"$file"
	rm -f "$file.head"
}

nginx_cfg() { # DIR LISTEN UPSTREAM
	mkdir -p "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream next {
        server 127.0.0.1:$3;
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

# weft_pair_start PROTO PORT_A PORT_B UPSTREAM H2 ADMIN_A ADMIN_B: starts two
# chained weft proxies (A -> B -> UPSTREAM) as weft-PROTO-{a,b}; fails when
# they do not become ready.
weft_pair_start() {
	local proto=$1 pa=$2 pb=$3 up=$4 h2=$5 adma=$6 admb=$7 c=$OUT/conf
	weft_bootstrap "$c/weft-$proto-b.yaml" "${proto}_b $pb $up $h2"
	weft_bootstrap "$c/weft-$proto-a.yaml" "${proto}_a $pa $pb $h2"
	start "weft-$proto-b" bin/weft proxy --config "$c/weft-$proto-b.yaml" --admin-addr "127.0.0.1:$admb" --log-level warn
	start "weft-$proto-a" bin/weft proxy --config "$c/weft-$proto-a.yaml" --admin-addr "127.0.0.1:$adma" --log-level warn
	wait_ready "weft-$proto-b" "$admb" && wait_ready "weft-$proto-a" "$adma" && wait_port "weft-$proto-a" "$pa" && return 0
	note "$proto/weft: proxies did not become ready (logs: bench/out/logs/weft-$proto-{a,b}.log)"
	R[$proto.weft.failed]=1
	return 1
}

# weft_pair PROTO PORT_A PORT_B UPSTREAM H2 ADMIN_A ADMIN_B BENCH_FN: starts
# the pair, runs BENCH_FN weft PORT_A with their pids, and stops them.
weft_pair() {
	local proto=$1 pa=$2 fn=$8
	if weft_pair_start "${@:1:7}"; then
		"$fn" weft "$pa" "${PID[weft-$proto-a]}" "${PID[weft-$proto-b]}"
	fi
	stop "weft-$proto-a"
	stop "weft-$proto-b"
}

table_rows() { # PROTO SETUP...
	local proto=$1 s
	shift
	for s in "$@"; do
		if [[ -n ${R[$proto.$s.failed]:-} ]]; then
			echo "| $s | failed: see notes | | | | | | | | | |"
			continue
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" \
			"$(num "${R[$proto.$s.rps]:-}")" \
			"$(us "${R[$proto.$s.p50_us]:-}")" "$(us "${R[$proto.$s.p99_us]:-}")" \
			"$(added "$proto" "$s" p50_us)" "$(added "$proto" "$s" p99_us)" \
			"$(mb "${R[$proto.$s.rss_idle]:-}")" "$(mb "${R[$proto.$s.rss_load]:-}")" \
			"$(num "${R[$proto.$s.cpu]:-}")" "$(per_req "$proto" "$s")" \
			"$(num "${R[$proto.$s.cpu_fixed]:-}")"
	done
}

report() {
	local cmd=./bench/run.sh
	[[ -n ${MAKELEVEL:-} ]] && cmd="make bench"
	local overrides
	overrides=$(env | grep '^BENCH_' | sort | paste -sd' ' || true)
	local head="| setup | max req/s | p50 µs | p99 µs | p50 added µs | p99 added µs | RSS idle MB | RSS load MB | CPU s | CPU µs/req | CPU % at ${RATE} rps |"
	local sep="|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
	local tp p99 rss cpu cpureq idle
	tp=$(ratio "${R[h1.weft.rps]:-}" "${R[h1.haproxy.rps]:-}")
	p99=$(ratio "$(added h1 weft p99_us)" "$(added h1 haproxy p99_us)")
	local p99r
	p99r=$(lat_round_ratio weft haproxy)
	rss=$(ratio "${R[h1.weft.rss_load]:-}" "${R[h1.haproxy.rss_load]:-}")
	cpu=$(ratio "${R[h1.weft.cpu]:-}" "${R[h1.haproxy.cpu]:-}")
	cpureq=$(ratio "$(per_req h1 weft)" "$(per_req h1 haproxy)")
	idle=$(mb "${R[idle.rss]:-}")
	cat <<EOF
# weft benchmark results

Command: \`$cmd\`${overrides:+ (with $overrides)}
Date: $(date -u '+%Y-%m-%d %H:%M UTC')
Commit: $(git rev-parse --short HEAD 2>/dev/null || echo "none (uncommitted tree)")$( [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]] && echo ", working tree modified")

Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r).
Load generator, backend and both proxies of a setup share these CPUs; nothing
is pinned. Tools: $(go version | awk '{print $3}'), $(haproxy -v 2>&1 | head -n 1 | awk '{print "HAProxy " $3}'),
$(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | awk '{print "wrk " $2}'), $(h2load --version 2>&1 | head -n 1).

Every proxy row is **two proxies in a row** (client → sidecar A → sidecar B →
backend); "direct" is client → backend. HAProxy runs with \`nbthread 2\`,
nginx with \`worker_processes 2\`, weft with the default GOMAXPROCS ($(nproc)).
Throughput: wrk -t$THREADS -c$CONNS, ${DUR}s after a ${WARM}s warm-up (h2c: h2load
-c $H2_CLIENTS -m $H2_STREAMS; gRPC: bench/loadgen closed loop, 100 concurrent
Health/Check over 10 connections). Latency: bench/loadgen open loop at
$RATE req/s, $LATN measured requests after $RATE warm-up ones, measured from
each request's scheduled send time. RSS and CPU are summed over both proxy
processes and their workers: RSS idle is read before the first request, RSS
load 60% into the throughput run; CPU s is user+system time during the
throughput run. Response body: 1024 bytes. See bench/README.md.

Load average (1 min) at the start of the run: $LOAD_START, at the end:
$(cut -d' ' -f1 /proc/loadavg). Other work on the machine shows up here: with
a load above the CPU count, treat the absolute numbers as noisy and compare
rows, not runs.

## HTTP/1.1 keep-alive, 1 KB responses, two hops

$head
$sep
$(table_rows h1 direct weft haproxy nginx)

## Alternating latency rounds

With direct, weft, HAProxy and nginx all running, $LAT_ROUNDS rounds follow:
in each, every setup in turn gets a fixed-rate run of $LAT_ROUND_N requests
at $RATE req/s (after $((RATE / 2)) warm-up ones), the order rotated every
round. A setup's p99 is compared with direct's of the same round, when the
shared machine was in the same state; the p99 verdict is the median of the
per-round ratios. The single runs of the table above are one each, minutes
apart, and move by a factor of two between runs here.

| setup | p99 µs per round | median p99 added over direct, µs |
|---|--:|--:|
$(for s in "${LAT_SETUPS[@]}"; do printf '| %s | %s | %s |\n' "$s" "$(lat_round_values "$s" | paste -sd' ')" "$( [[ $s == direct ]] && echo 0 || lat_round_added "$s")"; done)

## weft / HAProxy

| measure | weft / HAProxy | target |
|---|--:|---|
| max throughput | $tp | ≥ 0.8 ($(verdict "$tp" ">=" 0.8)) |
| p99 added over direct at $RATE req/s, median of $LAT_ROUNDS alternating rounds | $p99r | ≤ 1.2 ($(verdict "$p99r" "<=" 1.2)) |
| p99 added over direct at $RATE req/s, the single runs of the table | $p99 | |
| RSS under load | $rss | |
| CPU seconds in the throughput run | $cpu | |
| CPU per request in the throughput run | $cpureq | |

Idle RSS of one weft process with $NCLUSTERS static clusters (one listener):
**$idle MB** (target ≤ 20 MB: $(verdict "$idle" "<=" 20)); of which anonymous
(heap, stacks) $(mb "${R[idle.anon]:-}") MB and file-backed (the mapped binary)
$(mb "${R[idle.file]:-}") MB. The binary's pages are shared by every weft process
on the machine, so each extra sidecar costs about its anonymous memory; its
proportional share (PSS) here, with one weft process mapping the binary, is
$(mb "${R[idle.pss]:-}") MB. For comparison, the two weft processes of the
HTTP/1.1 row (one listener and one cluster each) held $(mb "${R[h1.weft.rss_idle]:-}") MB
together before their first request.

## h2c and gRPC, two weft hops

### h2c (1 KB responses)

$head
$sep
$(table_rows h2c direct weft)

### gRPC unary (grpc.health.v1.Health/Check)

$head
$sep
$(table_rows grpc direct weft)

## Control plane: push fan-out and registry size

Go benchmarks (\`go test -run '^\$' -bench 'PushFanout|RegistryMemory' ./control/xds ./control/registry\`):
1,000 simulated proxies hold real delta xDS streams over gRPC; one instance
changes; the time until every proxy received its new ClusterLoadAssignment.
The registry benchmark inserts 100,000 instances over 1,000 services.

\`\`\`
${CONTROL_BENCH:-not run}
\`\`\`

## Notes

$(if ((${#NOTES[@]})); then printf -- '- %s\n' "${NOTES[@]}"; else echo "- None: every check request succeeded and no load run reported errors."; fi)
EOF
}

# --------------------------------------------------------------------- main

main() {
	rm -rf "$OUT/logs" "$OUT"/conf
	mkdir -p "$LOGS" "$OUT/conf"
	local began=$SECONDS
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	install_tools haproxy nginx wrk h2load:nghttp2-client curl
	build
	local p
	for p in $BACKEND_H1 $BACKEND_H2C $BACKEND_GRPC $WEFT_A $WEFT_B $WEFT_ADMIN_A $WEFT_ADMIN_B \
		$WEFT_H2C_A $WEFT_H2C_B $WEFT_GRPC_A $WEFT_GRPC_B $WEFT_ADMIN_H2A $WEFT_ADMIN_H2B \
		$WEFT_ADMIN_GA $WEFT_ADMIN_GB $WEFT_IDLE $WEFT_ADMIN_IDLE $HAPROXY_A $HAPROXY_B $NGINX_A $NGINX_B; do
		port_free "$p" || die "port $p is in use; stop what holds it (ss -ltnp 'sport = :$p')"
	done

	start backend "$BIN/backend" -http1 "127.0.0.1:$BACKEND_H1" -h2c "127.0.0.1:$BACKEND_H2C" -grpc "127.0.0.1:$BACKEND_GRPC"
	wait_port backend $BACKEND_H1 && wait_port backend $BACKEND_H2C && wait_port backend $BACKEND_GRPC ||
		die "backend did not start"

	# ---- HTTP/1.1: each setup alone, then all of them running for the
	# alternating latency rounds.
	declare -gA LAT_TARGET=([direct]="http://127.0.0.1:$BACKEND_H1/")
	local lat=(direct)
	bench_h1 direct $BACKEND_H1

	if ((WEFT_OK)) && weft_pair_start h1 $WEFT_A $WEFT_B $BACKEND_H1 0 $WEFT_ADMIN_A $WEFT_ADMIN_B; then
		bench_h1 weft $WEFT_A "${PID[weft-h1-a]}" "${PID[weft-h1-b]}"
		[[ -n ${R[h1.weft.failed]:-} ]] || { LAT_TARGET[weft]="http://127.0.0.1:$WEFT_A/"; lat+=(weft); }
	else
		R[h1.weft.failed]=1
	fi

	haproxy_cfg "$OUT/conf/haproxy-b.cfg" $HAPROXY_B $BACKEND_H1
	haproxy_cfg "$OUT/conf/haproxy-a.cfg" $HAPROXY_A $HAPROXY_B
	start haproxy-b haproxy -db -f "$OUT/conf/haproxy-b.cfg"
	start haproxy-a haproxy -db -f "$OUT/conf/haproxy-a.cfg"
	wait_port haproxy-b $HAPROXY_B && wait_port haproxy-a $HAPROXY_A || die "haproxy did not start"
	bench_h1 haproxy $HAPROXY_A "${PID[haproxy-a]}" "${PID[haproxy-b]}"
	[[ -n ${R[h1.haproxy.failed]:-} ]] || { LAT_TARGET[haproxy]="http://127.0.0.1:$HAPROXY_A/"; lat+=(haproxy); }

	nginx_cfg "$OUT/conf/nginx-b" $NGINX_B $BACKEND_H1
	nginx_cfg "$OUT/conf/nginx-a" $NGINX_A $NGINX_B
	start nginx-b nginx -e "$OUT/conf/nginx-b/error.log" -p "$OUT/conf/nginx-b" -c "$OUT/conf/nginx-b/nginx.conf"
	start nginx-a nginx -e "$OUT/conf/nginx-a/error.log" -p "$OUT/conf/nginx-a" -c "$OUT/conf/nginx-a/nginx.conf"
	wait_port nginx-b $NGINX_B && wait_port nginx-a $NGINX_A || die "nginx did not start"
	bench_h1 nginx $NGINX_A "${PID[nginx-a]}" "${PID[nginx-b]}"
	[[ -n ${R[h1.nginx.failed]:-} ]] || { LAT_TARGET[nginx]="http://127.0.0.1:$NGINX_A/"; lat+=(nginx); }

	log "latency rounds: $LAT_ROUNDS x ${lat[*]}"
	LAT_SETUPS=("${lat[@]}")
	latency_rounds "${lat[@]}"
	local s
	for s in nginx-a nginx-b haproxy-a haproxy-b weft-h1-a weft-h1-b; do stop "$s"; done

	# ---- h2c and gRPC
	bench_h2c direct $BACKEND_H2C
	bench_grpc direct $BACKEND_GRPC
	if ((WEFT_OK)); then
		weft_pair h2c $WEFT_H2C_A $WEFT_H2C_B $BACKEND_H2C 1 $WEFT_ADMIN_H2A $WEFT_ADMIN_H2B bench_h2c
		weft_pair grpc $WEFT_GRPC_A $WEFT_GRPC_B $BACKEND_GRPC 1 $WEFT_ADMIN_GA $WEFT_ADMIN_GB bench_grpc

		# ---- idle memory with many clusters
		local c=$OUT/conf
		weft_many_clusters "$c/weft-idle.yaml" "$NCLUSTERS"
		start weft-idle bin/weft proxy --config "$c/weft-idle.yaml" --admin-addr "127.0.0.1:$WEFT_ADMIN_IDLE" --log-level warn
		if wait_ready weft-idle $WEFT_ADMIN_IDLE; then
			local got
			got=$(check_h1 "http://127.0.0.1:$WEFT_IDLE/")
			[[ $got == "200 1024" ]] || note "idle/weft: request through the $NCLUSTERS-cluster config got '$got', want '200 1024'"
			sleep 2
			R[idle.rss]=$(rss_kb "${PID[weft-idle]}")
			R[idle.anon]=$(awk '/^RssAnon:/ {print $2}' "/proc/${PID[weft-idle]}/status")
			R[idle.file]=$(awk '/^RssFile:/ {print $2}' "/proc/${PID[weft-idle]}/status")
			R[idle.pss]=$(awk '/^Pss:/ {print $2}' "/proc/${PID[weft-idle]}/smaps_rollup" 2>/dev/null || true)
			log "weft idle RSS with $NCLUSTERS clusters: ${R[idle.rss]} KiB"
		else
			note "idle/weft: proxy with $NCLUSTERS clusters did not become ready (log: bench/out/logs/weft-idle.log)"
		fi
		stop weft-idle
	else
		R[h2c.weft.failed]=1 R[grpc.weft.failed]=1
	fi
	stop backend

	log "control-plane benchmarks"
	CONTROL_BENCH=$(go test -run '^$' -bench 'PushFanout|RegistryMemory' -benchtime 5x ./control/xds ./control/registry 2>&1 |
		grep -E '^Benchmark' || echo "control-plane benchmarks failed; run them by hand")

	report >"$OUT/RESULTS.md"
	cp "$OUT/RESULTS.md" "$RESULTS"
	cat "$OUT/RESULTS.md"
	log "done in $((SECONDS - began))s; report written to $RESULTS"
}

main "$@"
