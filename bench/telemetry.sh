#!/usr/bin/env bash
# bench/telemetry.sh: what telemetry costs two weft hops (issue 7): the
# same two hops with telemetry off, with every request traced and its
# access record shipped over OTLP to a running `weft control`, and the
# same plus a local access-log file, against the direct connection, in one
# run. Writes bench/RESULTS-telemetry.md, which explains what each table
# measures; the shared steps (throughput, latency, /proc readings,
# alternating rounds) are those of run.sh and mtls.sh (bench/README.md).
#
# Knobs (environment, defaults in brackets), as mtls.sh's: BENCH_DURATION
# [10] seconds per throughput run, BENCH_WARMUP [3], BENCH_CONNS [50],
# BENCH_THREADS [2], BENCH_RATE [1000], BENCH_LAT_REQUESTS [10000],
# BENCH_ROUNDS [15] alternating rounds of BENCH_ROUND_DURATION [3] seconds
# per setup, BENCH_OTLP [unix] (or http, grpc) transport to the hub,
# BENCH_TELEMETRY_RESULTS [bench/RESULTS-telemetry.md].
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
ROOT=$PWD

# Many short rounds: this machine alternates between a fast and a slow
# state for tens of seconds at a time (the same setup reads ~30k or ~24k
# req/s); short rounds put the setups compared within a round in the same
# state more often.
ROUNDS=${BENCH_ROUNDS:-15}
: "${BENCH_ROUND_DURATION:=3}"
RESULTS=${BENCH_TELEMETRY_RESULTS:-bench/RESULTS-telemetry.md}

OUT=$ROOT/bench/out/telemetry
LOGS=$OUT/logs
CONF=$OUT/conf
STATE=$OUT/state    # the control plane's state directory
ACCESS=$OUT/access  # the local access-log files of weft-full-file
BIN=$ROOT/bench/out/bin

# Fixed loopback ports, apart from run.sh's (28080–28301) and mtls.sh's
# (28400–28493).
BACKEND=28580
HUB_API=28570 HUB_XDS=28571
# BENCH_OTLP [unix]: how the proxies ship to the hub: unix (OTLP/HTTP over
# the hub's Unix socket <state-dir>/otlp.sock, as weft up's proxies), http
# (OTLP/HTTP to the API port) or grpc (OTLP/gRPC to the xDS port).
case ${BENCH_OTLP:=unix} in
unix) OTLP_ADDR=unix://$STATE/otlp.sock OTLP_DESC="OTLP/HTTP (binary protobuf) POSTs over the hub's Unix socket \`$STATE/otlp.sock\`" ;;
http) OTLP_ADDR=http://127.0.0.1:$HUB_API OTLP_DESC="OTLP/HTTP (binary protobuf) POSTs to \`http://127.0.0.1:$HUB_API/v1/{traces,logs}\`" ;;
grpc) OTLP_ADDR=127.0.0.1:$HUB_XDS OTLP_DESC="OTLP/gRPC Export calls to \`127.0.0.1:$HUB_XDS\`" ;;
*) echo "BENCH_OTLP must be unix, http or grpc" >&2; exit 2 ;;
esac
NS=bench

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ------------------------------------------------------------------ setups

SETUPS=(weft-off weft-full weft-full-file)
# setup -> "PORT_A PORT_B ADMIN_A ADMIN_B"
declare -A PORTS=([weft-off]="28500 28501 28590 28591" [weft-full]="28510 28511 28592 28593"
	[weft-full-file]="28520 28521 28594 28595")
declare -A TEL=([direct]="no proxy" [weft-off]="off (metrics only)" [weft-full]="traces 100 % + access records → OTLP"
	[weft-full-file]="as full + local access-log file")
declare -A PORT_A=() PORT_B=() ADMIN=() UP=() # ADMIN[SETUP-a|b]: admin port of a hop

# tel_flags SETUP HOP: the telemetry flags of one hop, one per line.
tel_flags() {
	case $1 in
	weft-off) printf '%s\n' --access-log off --trace-sampling 0 ;;
	weft-full) printf '%s\n' --access-log off --trace-sampling 1 --telemetry-addr "$OTLP_ADDR" --token "$TOKEN" ;;
	weft-full-file) printf '%s\n' --access-log "$ACCESS/$1-$2.log" --trace-sampling 1 --telemetry-addr "$OTLP_ADDR" --token "$TOKEN" ;;
	esac
}

# start_hub: `weft control` as the OTLP sink; sets TOKEN (operator token).
start_hub() {
	start hub bin/weft control --state-dir "$STATE" --api-addr "127.0.0.1:$HUB_API" --xds-addr "127.0.0.1:$HUB_XDS" --log-level warn
	wait_port hub $HUB_API && wait_port hub $HUB_XDS || die "weft control did not start: $(tail -n 5 "$LOGS/hub.log" | tr '\n' ' ')"
	[[ -s $STATE/join-token ]] || die "weft control wrote no $STATE/join-token"
	[[ $BENCH_OTLP != unix || -S $STATE/otlp.sock ]] || die "weft control opened no $STATE/otlp.sock: $(tail -n 5 "$LOGS/hub.log" | tr '\n' ' ')"
	TOKEN=$(cat "$STATE/join-token")
}

# start_weft SETUP: weft B (to the backend) and A (to B) with the setup's
# telemetry flags; waits until both are ready.
start_weft() {
	local s=$1 pa pb adma admb h adm
	read -r pa pb adma admb <<<"${PORTS[$s]}"
	PORT_A[$s]=$pa PORT_B[$s]=$pb ADMIN[$s-a]=$adma ADMIN[$s-b]=$admb
	weft_bootstrap "$CONF/$s-b.yaml" "${s//-/_}_b $pb $BACKEND 0"
	weft_bootstrap "$CONF/$s-a.yaml" "${s//-/_}_a $pa $pb 0"
	for h in b a; do
		adm=${ADMIN[$s-$h]}
		local flags=()
		mapfile -t flags < <(tel_flags "$s" "$h")
		start "$s-$h" bin/weft proxy --config "$CONF/$s-$h.yaml" --admin-addr "127.0.0.1:$adm" --log-level warn \
			--workload "$s-$h" --namespace "$NS" "${flags[@]}"
	done
	if wait_ready "$s-b" "$admb" && wait_ready "$s-a" "$adma" && wait_port "$s-a" "$pa"; then
		UP[$s]=1
	else
		note "$s: proxies did not become ready (logs: bench/out/telemetry/logs/$s-{a,b}.log): $(tail -n 3 "$LOGS/$s-a.log" "$LOGS/$s-b.log" 2>/dev/null | tr '\n' ' ')"
		R[h1.$s.failed]=1
	fi
}

# traced SETUP: whether the setup exports spans and records.
traced() { [[ $1 == weft-full* ]]; }

# ------------------------------------------------------------ telemetry counts

# counters ADMIN_PORT: "requests spans_sent records_sent spans_dropped
# records_dropped" from a hop's /stats/prometheus (requests summed over
# every weft_requests_total series).
counters() {
	curl -s --max-time 5 "http://127.0.0.1:$1/stats/prometheus" | awk '
		/^weft_requests_total\{/ { r += $NF }
		/^weft_telemetry_sent_total\{signal="traces"\}/ { st = $NF }
		/^weft_telemetry_sent_total\{signal="logs"\}/ { sl = $NF }
		/^weft_telemetry_dropped_total\{signal="traces"\}/ { dt = $NF }
		/^weft_telemetry_dropped_total\{signal="logs"\}/ { dl = $NF }
		END { printf "%d %d %d %d %d\n", r, st, sl, dt, dl }'
}

# drained SETUP: waits (up to 10 s) until every record both hops made has
# been sent or dropped: spans and records each equal the requests (every
# request is traced and logged at both hops). Fails when they do not.
drained() {
	local s=$1 h r st sl dt dl ok
	for _ in $(seq 100); do
		ok=1
		for h in a b; do
			read -r r st sl dt dl <<<"$(counters "${ADMIN[$s-$h]}")"
			((st + dt >= r && sl + dl >= r)) || ok=0
		done
		((ok)) && return 0
		sleep 0.1
	done
	return 1
}

# snapshot KEY SETUP: the counters of both hops into R[KEY.{a,b}.*].
snapshot() {
	local key=$1 s=$2 h r st sl dt dl
	for h in a b; do
		read -r r st sl dt dl <<<"$(counters "${ADMIN[$s-$h]}")"
		R[$key.$h.req]=$r R[$key.$h.st]=$st R[$key.$h.sl]=$sl R[$key.$h.dt]=$dt R[$key.$h.dl]=$dl
	done
}

# hub_seq: the Seq of the last log record the hub received (its count of
# records received since it started).
hub_seq() { curl -s --max-time 5 "http://127.0.0.1:$HUB_API/api/v1/logs?limit=1" | jq -r '.last // 0'; }

# hub_traces [SERVICE]: "trace_id spans" of every trace the hub holds
# (with a span of SERVICE).
hub_traces() {
	curl -s --max-time 30 "http://127.0.0.1:$HUB_API/api/v1/traces?limit=1000000${1:+&service=$1}" |
		jq -r '.traces[] | "\(.traceId) \(.spans)"'
}

# window_hook before|after SETUP: around the fixed-rate run of a traced
# setup, with both hops drained before each reading: the hops' counters,
# the hub's log Seq, the traces it holds, and the hub's CPU. The run's
# requests are far fewer than the hub keeps (50,000 spans), so every span
# it received in the run is still there: traces absent before the run are
# the run's.
window_hook() {
	local phase=$1 s=$2
	traced "$s" || return 0
	drained "$s" || note "$s: exporters not drained 10 s after the $phase of the fixed-rate run"
	snapshot "w$phase.$s" "$s"
	R[w$phase.$s.seq]=$(hub_seq)
	R[w$phase.$s.hub]=$(cpu_ticks "${PID[hub]}")
	hub_traces "$s-a" >"$LOGS/traces-$phase-$s.txt"
	[[ $phase == after ]] || return 0
	# new traces, their spans, and those with both hops' spans
	read -r R[win.$s.traces] R[win.$s.spans] R[win.$s.complete] < <(awk 'NR == FNR { seen[$1] = 1; next }
		!($1 in seen) { n++; sp += $2; if ($2 == 2) c++ } END { print n + 0, sp + 0, c + 0 }' \
		"$LOGS/traces-before-$s.txt" "$LOGS/traces-after-$s.txt")
	local k
	for k in req st sl dt dl; do
		R[win.$s.$k]=$((R[wafter.$s.a.$k] + R[wafter.$s.b.$k] - R[wbefore.$s.a.$k] - R[wbefore.$s.b.$k]))
	done
	R[win.$s.hopreq]=${R[win.$s.req]}
	R[win.$s.req]=$((R[wafter.$s.a.req] - R[wbefore.$s.a.req]))
	R[win.$s.logs]=$((R[wafter.$s.seq] - R[wbefore.$s.seq]))
	((R[win.$s.req] > 0)) &&
		R[win.$s.hub_us]=$(calc %.1f "(${R[wafter.$s.hub]} - ${R[wbefore.$s.hub]}) / $CLK_TCK * 1000000 / ${R[win.$s.req]}")
	log "$s fixed-rate window: ${R[win.$s.req]} requests, ${R[win.$s.st]} spans sent, ${R[win.$s.spans]} in the hub, ${R[win.$s.logs]} records received"
}

# round_hook before|after SETUP I: the hub's CPU across a round of a traced
# setup, read once both hops have sent what the round made.
round_hook() {
	local phase=$1 s=$2 i=$3
	traced "$s" || return 0
	if [[ $phase == after ]]; then
		drained "$s" || note "round $i/$s: exporters not drained 10 s after the round"
	fi
	R[rd.$s.$i.hub_$phase]=$(cpu_ticks "${PID[hub]}")
}

# hub_per_req SETUP I: the hub's CPU µs per request of a round.
hub_per_req() {
	local b=${R[rd.$1.$2.hub_before]:-} a=${R[rd.$1.$2.hub_after]:-} r=${R[rd.$1.$2.rps]:-}
	[[ -n $b && -n $a && -n $r ]] && calc %.1f "($a - $b) / $CLK_TCK * 1000000 / ($r * $ROUND_DUR)"
}

# measure SETUP: bench_h1 through the setup's hop A.
measure() {
	local s=$1
	[[ -n ${UP[$s]:-} ]] || return 0
	bench_h1 "$s" "${PORT_A[$s]}" "${PID[$s-a]}" "${PID[$s-b]}"
	if [[ -n ${R[h1.$s.failed]:-} ]]; then
		UP[$s]=
		note "$s: logs: A: $(tail -n 3 "$LOGS/$s-a.log" | tr '\n' ' ') B: $(tail -n 3 "$LOGS/$s-b.log" | tr '\n' ' ')"
	fi
}

# first_trace SETUP: one request through the setup, then polls the hub
# (up to 5 s) for a trace holding both hops' spans.
first_trace() {
	local s=$1 got
	got=$(check_h1 "http://127.0.0.1:${PORT_A[$s]}/")
	[[ $got == "200 1024" ]] || { note "$s: check request got '$got'"; return 0; }
	for _ in $(seq 50); do
		if hub_traces "$s-a" | awk '$2 == 2 { found = 1 } END { exit !found }'; then
			log "$s: the hub holds a trace with both hops' spans"
			return 0
		fi
		sleep 0.1
	done
	note "$s: no trace with both hops' spans reached the hub within 5 s of a request (log: bench/out/telemetry/logs/hub.log)"
}

# ------------------------------------------------------------------- report


round_rows() { # SETUP...
	local s i v hub
	for s in "$@"; do
		hub=()
		if traced "$s"; then
			for ((i = 0; i < ROUNDS; i++)); do
				v=$(hub_per_req "$s" "$i") && hub+=("$v")
			done
		fi
		# shellcheck disable=SC2046 # one value per word
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$s" \
			"$(round_values "$s" rps | paste -sd' ')" "$(round_values "$s" us | paste -sd' ')" \
			"$(if ((${#hub[@]})); then echo "${hub[*]}"; else echo "–"; fi)" \
			"$(median %.0f $(round_values "$s" rps))" "$(median %.1f $(round_values "$s" us))" \
			"$(median %.1f "${hub[@]}")"
	done
}

# hub_round_ratio A B: the median over rounds of (A's proxy CPU + hub CPU
# per request) over B's proxy CPU per request.
hub_round_ratio() {
	local i v=() h r
	for ((i = 0; i < ROUNDS; i++)); do
		[[ -n ${R[rd.$1.$i.us]:-} && -n ${R[rd.$2.$i.us]:-} ]] || continue
		h=$(hub_per_req "$1" "$i") || continue
		r=$(ratio "$(calc %.1f "${R[rd.$1.$i.us]} + $h")" "${R[rd.$2.$i.us]}")
		[[ $r == – ]] || v+=("$r")
	done
	median %.2f "${v[@]}"
}

account_rows() { # SETUP...
	local s h
	for s in "$@"; do
		for h in a b; do
			[[ -n ${R[end.$s.$h.req]:-} ]] || continue
			printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$h" "${R[end.$s.$h.req]}" \
				"${R[end.$s.$h.st]}" "${R[end.$s.$h.dt]}" "${R[end.$s.$h.sl]}" "${R[end.$s.$h.dl]}"
		done
	done
}

window_rows() { # SETUP...
	local s
	for s in "$@"; do
		[[ -n ${R[win.$s.req]:-} ]] || { echo "| $s | not measured: see notes | | | | | | | |"; continue; }
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" "${R[win.$s.req]}" "${R[win.$s.hopreq]}" \
			"${R[win.$s.st]}" "${R[win.$s.dt]}" "${R[win.$s.spans]}" "${R[win.$s.complete]}" \
			"${R[win.$s.sl]} / ${R[win.$s.dl]}" "${R[win.$s.logs]}" "$(num "${R[win.$s.hub_us]:-}")"
	done
}

report() {
	local cmd=./bench/telemetry.sh
	[[ -n ${MAKELEVEL:-} ]] && cmd="make bench-telemetry"
	local overrides
	overrides=$(env | grep '^BENCH_' | sort | paste -sd' ' || true)
	local r_tp r_tpf r_cpu r_cpuf r_hub r_hubf tp tpf cpu cpuf cpux cpuxf
	r_tp=$(round_ratio weft-full weft-off rps)
	r_tpf=$(round_ratio weft-full-file weft-off rps)
	r_cpu=$(round_ratio weft-full weft-off us)
	r_cpuf=$(round_ratio weft-full-file weft-off us)
	r_hub=$(hub_round_ratio weft-full weft-off)
	r_hubf=$(hub_round_ratio weft-full-file weft-off)
	tp=$(ratio "${R[h1.weft-full.rps]:-}" "${R[h1.weft-off.rps]:-}")
	tpf=$(ratio "${R[h1.weft-full-file.rps]:-}" "${R[h1.weft-off.rps]:-}")
	cpu=$(ratio "$(per_req h1 weft-full)" "$(per_req h1 weft-off)")
	cpuf=$(ratio "$(per_req h1 weft-full-file)" "$(per_req h1 weft-off)")
	cpux=$(ratio "$(per_req_fixed weft-full)" "$(per_req_fixed weft-off)")
	cpuxf=$(ratio "$(per_req_fixed weft-full-file)" "$(per_req_fixed weft-off)")
	local sent_logs=0 s h
	for s in weft-full weft-full-file; do
		for h in a b; do sent_logs=$((sent_logs + ${R[end.$s.$h.sl]:-0})); done
	done
	cat <<EOF
# weft telemetry benchmark results

Command: \`$cmd\`${overrides:+ (with $overrides)}
Date: $(date -u '+%Y-%m-%d %H:%M UTC')
Commit: $(git rev-parse --short HEAD 2>/dev/null || echo "none (uncommitted tree)")$( [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]] && echo ", working tree modified")

Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r),
**shared with other work**: the load generator, the backend, both proxies
of a setup and the control plane receiving the telemetry run on these CPUs
and nothing is pinned. Compare rows of one run, not runs. Load average
(1 min) at the start: $LOAD_START, at the end: $(cut -d' ' -f1 /proc/loadavg).
Tools: $(go version | awk '{print $3}'), $(wrk -v 2>&1 | head -n 1 | awk '{print "wrk " $2}').

## Setups

Two weft hops in file mode (\`weft proxy --config\`, client → A → B →
backend, all plaintext HTTP/1.1 keep-alive, 1 KB responses), each hop with
\`--workload <setup>-a|b --namespace $NS\`, and:

| setup | telemetry flags of both hops |
|---|---|
| weft-off | \`--access-log off --trace-sampling 0\`, no \`--telemetry-addr\` |
| weft-full | \`--access-log off --trace-sampling 1 --telemetry-addr $OTLP_ADDR --token <operator token>\` |
| weft-full-file | as weft-full with \`--access-log bench/out/telemetry/access/weft-full-file-a|b.log\` |

- **Metrics only** is not a separate setup: the proxy has no switch for
  its Prometheus metrics (\`weft_requests_total\`, the duration histograms
  and the rest of docs/observability.md are always recorded), so
  weft-off *is* "metrics only"; a second row would repeat it.
- \`--trace-sampling\` accepts 0–1 only (a negative value is refused);
  \`0\` means "never" in \`weft proxy\` (it passes a negative ratio to the
  proxy). Without \`--telemetry-addr\` (file mode) the proxy has no
  exporter, makes no spans and passes trace headers through unchanged.
- With sampling 1 every request makes one span and one access record at
  each hop; A's \`traceparent\` carries its span to B, so each trace has two
  spans. Since the collector is \`weft control\`, the span carries the
  access record and no separate log record is sent (docs/observability.md,
  "Records in spans"); the hub still stores one log record per request
  and hop. The exporter batches them (2048 records, 1 MiB or 1 s) into
  $OTLP_DESC (\`BENCH_OTLP\`=$BENCH_OTLP) to a real \`weft control\` (started with \`--state-dir
  bench/out/telemetry/state --api-addr 127.0.0.1:$HUB_API --xds-addr
  127.0.0.1:$HUB_XDS\`, default hub bounds: 50,000 spans, 200,000 log records);
  its queue is bounded (8,192 per signal) and overflow is dropped and
  counted in \`weft_telemetry_dropped_total\`.
- The control plane runs on the same two cores: its intake of the spans
  and records competes with the proxies, wrk and the backend, so the
  throughput ratios below include the hub's cost, which a real deployment
  pays on another machine. Its CPU is reported separately.

## Two hops, HTTP/1.1 keep-alive, 1 KB responses

Throughput: wrk -t$THREADS -c$CONNS to hop A, ${DUR}s after a ${WARM}s warm-up.
Latency: bench/loadgen open loop at $RATE req/s, $LATN measured requests after
$RATE warm-up ones, from each request's scheduled send time. CPU is
user+system time of both proxy processes (not the hub): "CPU s" during the
throughput run, "CPU µs/req" that divided by the requests served; "at $RATE
rps" the same during the fixed-rate run (% of one core, and per request).

| setup | telemetry | max req/s | p50 µs | p99 µs | p99 added µs | CPU s | CPU µs/req | CPU % at $RATE rps | CPU µs/req at $RATE rps |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|
$(h1_rows TEL direct "${SETUPS[@]}")

## Alternating rounds

With every setup still running, $ROUNDS rounds follow: in each, every setup
in turn gets a ${ROUND_DUR}s wrk -t$THREADS -c$CONNS run (the order rotated each
round), with the CPU time of both hops and of the hub (read once both
exporters have sent what the round made). A ratio below is computed
within each round and the median taken over the rounds; the target is
judged on it.

| setup | req/s per round | proxies' CPU µs/req per round | hub CPU µs/req per round | median req/s | median proxies' CPU µs/req | median hub CPU µs/req |
|---|--:|--:|--:|--:|--:|--:|
$(round_rows "${SETUPS[@]}")

## Ratios

| measure | rounds (median) | single run (table above) | target |
|---|--:|--:|---|
| weft-full / weft-off, throughput | $r_tp | $tp | ≥ 0.90 (≤ 10 % cost): **$(verdict "$r_tp" ">=" 0.90)** |
| weft-full-file / weft-off, throughput | $r_tpf | $tpf | |
| weft-full / weft-off, proxies' CPU per request | $r_cpu | $cpu | |
| weft-full-file / weft-off, proxies' CPU per request | $r_cpuf | $cpuf | |
| weft-full / weft-off, proxies' + hub CPU per request | $r_hub | | |
| weft-full-file / weft-off, proxies' + hub CPU per request | $r_hubf | | |
| weft-full / weft-off, proxies' CPU per request at $RATE req/s | | $cpux | |
| weft-full-file / weft-off, proxies' CPU per request at $RATE req/s | | $cpuxf | |

The judged ratio round by round (weft-full / weft-off throughput),
$(spread $(round_ratios weft-full weft-off rps)). A round in which the
machine changed state between the two setups' runs gives an outlier
either way; the median is robust to a few of them.

p99 added over direct at $RATE req/s, µs (one run each): weft-off $(added h1 weft-off p99_us),
weft-full $(added h1 weft-full p99_us), weft-full-file $(added h1 weft-full-file p99_us).

## Spans and access records: made, sent, dropped, received

Whole run, per hop, read from each hop's \`/stats/prometheus\` at the end
(after every exporter had sent what it held): requests is the sum of
\`weft_requests_total\` (each request makes one span and one access record
at a hop); sent is \`weft_telemetry_sent_total\` (records in Export calls
the hub accepted; an access record counts as sent when the span carrying
it is); dropped is \`weft_telemetry_dropped_total\` (queue
overflow, rejected records and batches that failed twice).

| setup | hop | requests | spans sent | spans dropped | records sent | records dropped |
|---|---|--:|--:|--:|--:|--:|
$(account_rows weft-full weft-full-file)

The hub received **${R[hub.seq]:-–}** access records in the whole run (the
Seq of its last log record; the four hops sent $sent_logs). It counts no
spans received; it holds the most recent 50,000: ${R[hub.spans]:-–} spans in ${R[hub.traces]:-–}
traces at the end, ${R[hub.complete]:-–} of them with both hops' spans (a trace
with one span lost its other one to that bound: the oldest go first).

### Exact count over the fixed-rate run

The fixed-rate run of a traced setup ($RATE warm-up + $LATN measured
requests) is fewer than the hub keeps, so every span the hub received in
it can be counted: traces the hub held after the run and not before it
(both exporters drained before each reading). Hub CPU is the control
plane's user+system time over the run, per request.

| setup | requests | requests at the two hops | spans sent | spans dropped | spans in the hub | traces with both spans | records sent / dropped | records received by the hub | hub CPU µs/req |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
$(window_rows weft-full weft-full-file)

### Local access-log files (weft-full-file)

Records written: A $(num "${R[file.a.lines]:-}"), B $(num "${R[file.b.lines]:-}") (requests at the hops: $(num "${R[end.weft-full-file.a.req]:-}"), $(num "${R[end.weft-full-file.b.req]:-}"));
$(num "${R[file.bytes]:-}") bytes in all, $(num "${R[file.per_rec]:-}") bytes per record. The files are
emptied at the end of the run (they grow by hundreds of MB).

## Notes

$(if ((${#NOTES[@]})); then printf -- '- %s\n' "${NOTES[@]}"; else echo "- None: every check request succeeded, spans reached the hub and no load run reported errors."; fi)
EOF
}

# --------------------------------------------------------------------- main

main() {
	rm -rf "$LOGS" "$CONF" "$STATE" "$ACCESS"
	mkdir -p "$LOGS" "$CONF" "$ACCESS"
	local began=$SECONDS p s h
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	install_tools wrk curl jq
	build
	((WEFT_OK)) || die "bin/weft did not build: see $LOGS/build-weft.log"
	for p in $BACKEND $HUB_API $HUB_XDS ${PORTS[*]}; do
		port_free "$p" || die "port $p is in use; stop what holds it (ss -ltnp 'sport = :$p')"
	done

	start backend "$BIN/backend" -http1 "127.0.0.1:$BACKEND"
	wait_port backend $BACKEND || die "backend did not start"
	start_hub

	# Every setup runs from here to the end; an idle one costs no CPU.
	for s in "${SETUPS[@]}"; do start_weft "$s"; done
	for s in weft-full weft-full-file; do [[ -z ${UP[$s]:-} ]] || first_trace "$s"; done

	H1_LATENCY_HOOK=window_hook
	bench_h1 direct $BACKEND
	for s in "${SETUPS[@]}"; do measure "$s"; done
	ROUND_HOOK=round_hook
	rounds "${SETUPS[@]}"

	for s in weft-full weft-full-file; do
		[[ -n ${UP[$s]:-} ]] || continue
		drained "$s" || note "$s: exporters not drained 10 s after the last round"
		snapshot "end.$s" "$s"
	done
	R[hub.seq]=$(hub_seq)
	hub_traces >"$LOGS/traces-end.txt"
	read -r R[hub.traces] R[hub.spans] R[hub.complete] < <(awk '{ n++; sp += $2; if ($2 == 2) c++ } END { print n + 0, sp + 0, c + 0 }' "$LOGS/traces-end.txt")
	if [[ -n ${UP[weft-full-file]:-} ]]; then
		local bytes=0 lines=0
		for h in a b; do
			R[file.$h.lines]=$(wc -l <"$ACCESS/weft-full-file-$h.log")
			lines=$((lines + R[file.$h.lines]))
			bytes=$((bytes + $(stat -c %s "$ACCESS/weft-full-file-$h.log")))
			tail -n 1 "$ACCESS/weft-full-file-$h.log" >"$LOGS/access-sample-$h.json"
			: >"$ACCESS/weft-full-file-$h.log"
		done
		R[file.bytes]=$bytes
		((lines)) && R[file.per_rec]=$((bytes / lines))
	fi

	report >"$OUT/RESULTS-telemetry.md"
	cp "$OUT/RESULTS-telemetry.md" "$RESULTS"
	cat "$OUT/RESULTS-telemetry.md"
	log "done in $((SECONDS - began))s; report written to $RESULTS"
}

main "$@"
