#!/usr/bin/env bash
# bench/mtls.sh: what mTLS between two weft hops costs, against the same two
# hops in plaintext and against HAProxy with and without TLS between its
# hops, plus full TLS handshakes per CPU-second of the TLS listener, in one
# run. Writes bench/RESULTS-mtls.md, which explains what each table measures;
# the shared steps (throughput, latency, /proc readings) are those of run.sh,
# described in bench/README.md.
#
# Knobs (environment, defaults in brackets), as run.sh's: BENCH_DURATION [10]
# seconds per throughput run, BENCH_WARMUP [3], BENCH_CONNS [50],
# BENCH_THREADS [2], BENCH_RATE [1000], BENCH_LAT_REQUESTS [10000]; and
# BENCH_ROUNDS [3] alternating rounds of BENCH_ROUND_DURATION [5] seconds
# per setup, BENCH_HS_DURATION [8] seconds per handshake run, BENCH_HS_CONNS
# [8] concurrent handshakes, BENCH_MTLS_RESULTS [bench/RESULTS-mtls.md].
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
HS_DUR=${BENCH_HS_DURATION:-8}
HS_CONNS=${BENCH_HS_CONNS:-8}
RESULTS=${BENCH_MTLS_RESULTS:-bench/RESULTS-mtls.md}

OUT=$ROOT/bench/out/mtls
LOGS=$OUT/logs
CONF=$OUT/conf
CERTS=$OUT/certs
BIN=$ROOT/bench/out/bin

# Fixed loopback ports, apart from run.sh's (28080–28301).
BACKEND=28480
WEFT_A=28400 WEFT_B=28401 WEFT_ADMIN_A=28490 WEFT_ADMIN_B=28491
WEFT_TLS_A=28410 WEFT_TLS_B=28411 WEFT_ADMIN_TLS_A=28492 WEFT_ADMIN_TLS_B=28493
HAPROXY_A=28420 HAPROXY_B=28421 HAPROXY_TLS_A=28430 HAPROXY_TLS_B=28431

TD=cluster.local
ID_B=spiffe://$TD/ns/bench/sa/b
ID_PREFIX=spiffe://$TD/ns/bench/

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ------------------------------------------------------------------ configs

# tls_fragments: the transport sockets of the weft mTLS hops. B's listener
# requires a client certificate of the bench namespace; A's cluster
# presents a's certificate and accepts only b's SPIFFE ID.
tls_fragments() {
	cat >"$CONF/down-tls.yaml" <<EOF
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: $CERTS/b.pem}
              private_key: {filename: $CERTS/b-key.pem}
            validation_context:
              trusted_ca: {filename: $CERTS/root.pem}
              match_typed_subject_alt_names:
              - san_type: URI
                matcher: {prefix: "$ID_PREFIX"}
EOF
	cat >"$CONF/up-tls.yaml" <<EOF
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          tls_certificates:
          - certificate_chain: {filename: $CERTS/a.pem}
            private_key: {filename: $CERTS/a-key.pem}
          validation_context:
            trusted_ca: {filename: $CERTS/root.pem}
            match_typed_subject_alt_names:
            - san_type: URI
              matcher: {exact: "$ID_B"}
EOF
}

# ---------------------------------------------------------------- handshakes

# handshakes ROW PORT PID LOADGEN_FLAGS...: a closed loop of new TLS
# connections (handshake, one GET, close) with HS_CONNS in flight for HS_DUR
# seconds against PORT, after a 1 s warm-up, with the CPU time of PID (the
# TLS server) across the run.
handshakes() {
	local row=$1 port=$2 pid=$3
	shift 3
	local flags=(-mode handshake -target "https://127.0.0.1:$port/" -cert "$CERTS/a.pem" -key "$CERTS/a-key.pem"
		-ca "$CERTS/root.pem" -rate 0 -c "$HS_CONNS" -warmup-duration 0 "$@")
	timeout 30 "$BIN/loadgen" "${flags[@]}" -duration 1s >/dev/null 2>&1 || true
	local t0 line began ended
	t0=$(cpu_ticks "$pid")
	began=$(date +%s.%N)
	if ! line=$(timeout $((HS_DUR + 30)) "$BIN/loadgen" "${flags[@]}" -duration "${HS_DUR}s" 2>"$LOGS/hs-$row.err"); then
		note "handshakes/$row: run failed: $(tail -n 3 "$LOGS/hs-$row.err" | tr '\n' ' ')"
		return 0
	fi
	ended=$(date +%s.%N)
	log "handshakes/$row: $line"
	local k
	for k in requests errors rate resumed tls group cipher p50_us p99_us; do R[hs.$row.$k]=$(kv "$k" "$line"); done
	R[hs.$row.cpu]=$(calc %.2f "($(cpu_ticks "$pid") - $t0) / $CLK_TCK")
	R[hs.$row.wall]=$(calc %.2f "$ended - $began")
	if [[ ${R[hs.$row.errors]} != 0 ]]; then
		note "handshakes/$row: ${R[hs.$row.errors]} failed connections: $(head -n 1 "$LOGS/hs-$row.err")"
	fi
}

# ------------------------------------------------------------------ setups

# hop_conns PORT: established TCP connections to PORT (hop A's pool to B).
hop_conns() { ss -Htn state established "( dport = :$1 )" | wc -l; }

declare -A PORT_A=() PORT_B=() UP=() # setup -> hop ports; setup -> 1 when running

# start_weft SETUP PORT_A PORT_B ADMIN_A ADMIN_B DOWN_TLS UP_TLS: starts weft
# B (listener with DOWN_TLS, to the backend) and A (cluster with UP_TLS, to
# B), and waits until both are ready. "-" is plaintext.
start_weft() {
	local s=$1 pa=$2 pb=$3 adma=$4 admb=$5 down=$6 up=$7
	local n=${s//-/_}
	PORT_A[$s]=$pa PORT_B[$s]=$pb
	weft_bootstrap "$CONF/$s-b.yaml" "${n}_b $pb $BACKEND 0 $down -"
	weft_bootstrap "$CONF/$s-a.yaml" "${n}_a $pa $pb 0 - $up"
	start "$s-b" bin/weft proxy --config "$CONF/$s-b.yaml" --admin-addr "127.0.0.1:$admb" --log-level warn
	start "$s-a" bin/weft proxy --config "$CONF/$s-a.yaml" --admin-addr "127.0.0.1:$adma" --log-level warn
	if wait_ready "$s-b" "$admb" && wait_ready "$s-a" "$adma" && wait_port "$s-a" "$pa"; then
		UP[$s]=1
	else
		note "$s: proxies did not become ready (logs: bench/out/mtls/logs/$s-{a,b}.log): $(tail -n 3 "$LOGS/$s-a.log" "$LOGS/$s-b.log" 2>/dev/null | tr '\n' ' ')"
		R[h1.$s.failed]=1
	fi
}

# start_haproxy SETUP PORT_A PORT_B TLS: two HAProxy hops; TLS=1 puts TLS
# with verified certificates on both sides between them.
start_haproxy() {
	local s=$1 pa=$2 pb=$3 tls=$4 bind= server=
	PORT_A[$s]=$pa PORT_B[$s]=$pb
	if ((tls)); then
		bind="ssl crt $CERTS/b-bundle.pem ca-file $CERTS/root.pem verify required"
		server="ssl crt $CERTS/a-bundle.pem ca-file $CERTS/root.pem verify required"
	fi
	haproxy_cfg "$CONF/$s-b.cfg" "$pb" $BACKEND "$bind"
	haproxy_cfg "$CONF/$s-a.cfg" "$pa" "$pb" "" "$server"
	start "$s-b" haproxy -db -f "$CONF/$s-b.cfg"
	start "$s-a" haproxy -db -f "$CONF/$s-a.cfg"
	if wait_port "$s-b" "$pb" && wait_port "$s-a" "$pa"; then
		UP[$s]=1
	else
		note "$s: haproxy did not start (logs: bench/out/mtls/logs/$s-{a,b}.log)"
		R[h1.$s.failed]=1
	fi
}

# measure SETUP: bench_h1 through the setup's hop A, then the connections
# from A to B left open.
measure() {
	local s=$1
	[[ -n ${UP[$s]:-} ]] || return 0
	bench_h1 "$s" "${PORT_A[$s]}" "${PID[$s-a]}" "${PID[$s-b]}"
	R[h1.$s.conns]=$(hop_conns "${PORT_B[$s]}")
	if [[ -n ${R[h1.$s.failed]:-} ]]; then
		UP[$s]=
		note "$s: logs: A: $(tail -n 3 "$LOGS/$s-a.log" | tr '\n' ' ') B: $(tail -n 3 "$LOGS/$s-b.log" | tr '\n' ' ')"
	fi
}

# ------------------------------------------------------------------- report


round_rows() { # SETUP...
	local s
	for s in "$@"; do
		# shellcheck disable=SC2046 # one value per word
		printf '| %s | %s | %s | %s | %s |\n' "$s" \
			"$(round_values "$s" rps | paste -sd' ')" "$(round_values "$s" us | paste -sd' ')" \
			"$(median %.0f $(round_values "$s" rps))" "$(median %.1f $(round_values "$s" us))"
	done
}

hs_rows() { # ROW...
	local r
	for r in "$@"; do
		if [[ -z ${R[hs.$r.requests]:-} ]]; then
			echo "| ${HSNAME[$r]} | not measured: see notes | | | | | | |"
			continue
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${HSNAME[$r]}" \
			"${R[hs.$r.tls]} ${R[hs.$r.group]}, ${R[hs.$r.cipher]}" \
			"${R[hs.$r.requests]}" "$(awk -v r="${R[hs.$r.resumed]}" -v n="${R[hs.$r.requests]}" 'BEGIN { p = (n > 0) ? 100 * r / n : 0; printf "%.0f", (p > 100) ? 100 : p }')" \
			"$(calc %.0f "${R[hs.$r.rate]}")" "${R[hs.$r.cpu]}" \
			"$(hs_per_cpu "$r")" "${R[hs.$r.p50_us]} / ${R[hs.$r.p99_us]}"
	done
}

# hs_per_cpu ROW: handshakes per CPU-second of the server.
hs_per_cpu() {
	local n=${R[hs.$1.requests]:-} c=${R[hs.$1.cpu]:-}
	[[ -n $n && -n $c ]] && awk -v n="$n" -v c="$c" 'BEGIN { if (c + 0 <= 0) print "–"; else printf "%.0f", n / c }' || echo "–"
}

report() {
	local cmd=./bench/mtls.sh
	[[ -n ${MAKELEVEL:-} ]] && cmd="make bench-mtls"
	local overrides
	overrides=$(env | grep '^BENCH_' | sort | paste -sd' ' || true)
	local cpu_w cpu_wf cpu_h tp_w tp_wh cpu_wh p99_wh p99_w p99_h hs_wh hs_wh_x openssl
	local r_cpu_w r_cpu_h r_tp_w r_tp_wh r_cpu_wh
	r_cpu_w=$(round_ratio weft-mtls weft us)
	r_cpu_h=$(round_ratio haproxy-tls haproxy us)
	r_tp_w=$(round_ratio weft-mtls weft rps)
	r_tp_wh=$(round_ratio weft-mtls haproxy-tls rps)
	r_cpu_wh=$(round_ratio weft-mtls haproxy-tls us)
	openssl=$(haproxy -vv 2>&1 | sed -n 's/^Running on OpenSSL version : OpenSSL \([^ ]*\).*/\1/p' | head -n 1)
	cpu_w=$(ratio "$(per_req h1 weft-mtls)" "$(per_req h1 weft)")
	cpu_wf=$(ratio "$(per_req_fixed weft-mtls)" "$(per_req_fixed weft)")
	cpu_h=$(ratio "$(per_req h1 haproxy-tls)" "$(per_req h1 haproxy)")
	tp_w=$(ratio "${R[h1.weft-mtls.rps]:-}" "${R[h1.weft.rps]:-}")
	tp_wh=$(ratio "${R[h1.weft-mtls.rps]:-}" "${R[h1.haproxy-tls.rps]:-}")
	cpu_wh=$(ratio "$(per_req h1 weft-mtls)" "$(per_req h1 haproxy-tls)")
	p99_w=$(added h1 weft-mtls p99_us)
	p99_h=$(added h1 haproxy-tls p99_us)
	p99_wh=$(ratio "$p99_w" "$p99_h")
	hs_wh=$(ratio "$(hs_per_cpu weft-full)" "$(hs_per_cpu haproxy-full)")
	hs_wh_x=$(ratio "$(hs_per_cpu weft-full-x25519)" "$(hs_per_cpu haproxy-full)")
	cat <<EOF
# weft mTLS benchmark results

Command: \`$cmd\`${overrides:+ (with $overrides)}
Date: $(date -u '+%Y-%m-%d %H:%M UTC')
Commit: $(git rev-parse --short HEAD 2>/dev/null || echo "none (uncommitted tree)")$( [[ -n $(git status --porcelain 2>/dev/null | head -n 1) ]] && echo ", working tree modified")

Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r),
**shared with other work**: the load generator, the backend and both proxies
of a setup run on these CPUs and nothing is pinned. Numbers vary from run to
run (by 10–20% for throughput and far more for p99 on a busy machine): compare
rows of one run, not runs. Load average (1 min) at the start: $LOAD_START, at
the end: $(cut -d' ' -f1 /proc/loadavg).
Tools: $(go version | awk '{print $3}'), $(haproxy -v 2>&1 | head -n 1 | awk '{print "HAProxy " $3}') (OpenSSL $openssl), $(wrk -v 2>&1 | head -n 1 | awk '{print "wrk " $2}').

Certificates: issued by weft's CA (\`control/ca\`, via \`bench/certgen\`):
ECDSA P-256 leaves for \`spiffe://$TD/ns/bench/sa/a\` (hop A, client) and
\`$ID_B\` (hop B, server), each with the intermediate; root in \`root.pem\`.
weft: A's cluster has an UpstreamTlsContext presenting a's certificate and
matching B's URI SAN exactly; B's listener a DownstreamTlsContext with
\`require_client_certificate: true\`, the root as trusted_ca and a URI SAN
prefix matcher \`$ID_PREFIX\`. HAProxy: \`server … ssl crt a-bundle.pem
ca-file root.pem verify required\` on A, \`bind … ssl crt b-bundle.pem ca-file
root.pem verify required\` on B (chain verification only: HAProxy checks no
SPIFFE ID). Client → A and B → backend are plaintext in every setup.

## Two hops, HTTP/1.1 keep-alive, 1 KB responses

Throughput: wrk -t$THREADS -c$CONNS to hop A, ${DUR}s after a ${WARM}s warm-up.
Latency: bench/loadgen open loop at $RATE req/s, $LATN measured requests after
$RATE warm-up ones, from each request's scheduled send time. CPU is
user+system time of both proxy processes: "CPU s" during the throughput run,
and "CPU µs/req" that divided by the requests served; "at $RATE rps" the same
during the fixed-rate run (% of one core, and per request). Connections
between the hops are kept alive, so this is mTLS at steady state: record
encryption, few handshakes. At maximum throughput the two cores are shared
by wrk, the backend and both proxies, so CPU per request there also moves
with how the scheduler splits them; the fixed-rate figure leaves the CPUs
mostly idle and pays a wake-up per request.

| setup | A → B | max req/s | p50 µs | p99 µs | p99 added µs | CPU s | CPU µs/req | CPU % at $RATE rps | CPU µs/req at $RATE rps |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|
$(h1_rows HOP direct weft weft-mtls haproxy haproxy-tls)

Connections from A to B still open after the load runs (each was
handshaked once and reused): weft $(num "${R[h1.weft.conns]:-}"), weft mTLS $(num "${R[h1.weft-mtls.conns]:-}"),
HAProxy $(num "${R[h1.haproxy.conns]:-}"), HAProxy TLS $(num "${R[h1.haproxy-tls.conns]:-}").

## CPU per request in alternating rounds

One throughput run per setup is at the mercy of whatever else the shared
machine does during those ${DUR}s. So, with every setup still running, $ROUNDS
rounds follow: in each, every setup in turn gets a ${ROUND_DUR}s wrk -t$THREADS -c$CONNS run
(the order rotated each round), with the CPU time of both hops. A ratio
below is computed within each round and the median taken over the rounds;
the target is judged on it.

| setup | req/s per round | CPU µs/req per round | median req/s | median CPU µs/req |
|---|--:|--:|--:|--:|
$(round_rows "${SETUPS[@]}")

## Ratios

| measure | rounds (median) | single run (table above) | target |
|---|--:|--:|---|
| weft mTLS / weft plaintext, CPU per request at max throughput | $r_cpu_w | $cpu_w | ≤ 1.15: **$(verdict "$r_cpu_w" "<=" 1.15)** |
| weft mTLS / weft plaintext, CPU per request at $RATE req/s | | $cpu_wf | |
| weft mTLS / weft plaintext, throughput | $r_tp_w | $tp_w | |
| HAProxy TLS / HAProxy plaintext, CPU per request | $r_cpu_h | $cpu_h | |
| weft mTLS / HAProxy TLS, throughput | $r_tp_wh | $tp_wh | |
| weft mTLS / HAProxy TLS, CPU per request | $r_cpu_wh | $cpu_wh | |
| weft mTLS / HAProxy TLS, p99 added over direct at $RATE req/s | | $p99_wh | |

p99 added over direct at $RATE req/s, µs: weft $(added h1 weft p99_us), weft mTLS $p99_w,
HAProxy $(added h1 haproxy p99_us), HAProxy TLS $p99_h (from one run each; differences of a few
hundred µs are within this machine's noise, and a ratio of two such
differences is shown only when both are positive).

## TLS handshakes per CPU-second of the server

bench/loadgen \`-mode handshake\` against hop B's TLS listener directly:
$HS_CONNS connections in flight for ${HS_DUR}s (after 1 s of warm-up), each a
new TCP connection, a TLS handshake presenting a's certificate and verifying
B's chain, one GET with \`Connection: close\` (B forwards it to the backend
over a pooled plaintext connection), then close. "Full": no client session
cache, so no resumption; "resumed": one shared session cache (TLS 1.3
tickets). Server CPU is user+system time of hop B's process over the run
(the load generator, on the same CPUs, pays the client side of every
handshake); handshakes per CPU-second is connections completed divided by
it, the rate one core of that server would sustain. Go's client offers
X25519MLKEM768 first (post-quantum hybrid), which weft (Go) accepts and
HAProxy's OpenSSL $openssl does not; the X25519 row forces the classical
group, which HAProxy negotiates. A TLS 1.3 resumption (psk_dhe_ke, the mode both Go
and OpenSSL use) still performs the key exchange: it saves the certificate
messages and signatures. weft's listener also re-checks the client's chain
and SAN on resumed connections (crypto/tls runs VerifyConnection on every
connection), so a resumed weft handshake still verifies two ECDSA
signatures. HAProxy's handshake cost depends much on the OpenSSL it links
(here $openssl).

| server | negotiated | connections | resumed % | conn/s | server CPU s | handshakes per CPU-s | p50 / p99 µs |
|---|---|--:|--:|--:|--:|--:|--:|
$(hs_rows weft-full weft-full-x25519 haproxy-full weft-resumed haproxy-resumed)

Full handshakes per CPU-second, weft / HAProxy: $hs_wh (default groups), $hs_wh_x (both X25519).

## Notes

$(if ((${#NOTES[@]})); then printf -- '- %s\n' "${NOTES[@]}"; else echo "- None: every check request succeeded and no load run reported errors."; fi)
EOF
}

# --------------------------------------------------------------------- main

SETUPS=(weft weft-mtls haproxy haproxy-tls)
declare -A HOP=([direct]="no proxy" [weft]=plaintext [weft-mtls]="mTLS (SPIFFE)" [haproxy]=plaintext [haproxy-tls]="TLS, both verified")
declare -A HSNAME=([weft-full]="weft B, full" [weft-full-x25519]="weft B, full, X25519 only"
	[haproxy-full]="HAProxy B, full" [weft-resumed]="weft B, resumed" [haproxy-resumed]="HAProxy B, resumed")

main() {
	rm -rf "$LOGS" "$CONF" "$CERTS"
	mkdir -p "$LOGS" "$CONF"
	local began=$SECONDS p
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	install_tools haproxy wrk curl
	build
	((WEFT_OK)) || die "bin/weft did not build: see $LOGS/build-weft.log"
	go build -o "$BIN/certgen" ./bench/certgen
	"$BIN/certgen" -dir "$CERTS" -trust-domain "$TD" -ns bench -sa a,b >"$LOGS/certgen.log" || die "certgen failed"
	tls_fragments
	for p in $BACKEND $WEFT_A $WEFT_B $WEFT_ADMIN_A $WEFT_ADMIN_B $WEFT_TLS_A $WEFT_TLS_B $WEFT_ADMIN_TLS_A \
		$WEFT_ADMIN_TLS_B $HAPROXY_A $HAPROXY_B $HAPROXY_TLS_A $HAPROXY_TLS_B; do
		port_free "$p" || die "port $p is in use; stop what holds it (ss -ltnp 'sport = :$p')"
	done

	start backend "$BIN/backend" -http1 "127.0.0.1:$BACKEND"
	wait_port backend $BACKEND || die "backend did not start"

	# Every setup runs from here to the end; an idle one costs no CPU.
	start_weft weft $WEFT_A $WEFT_B $WEFT_ADMIN_A $WEFT_ADMIN_B - -
	start_weft weft-mtls $WEFT_TLS_A $WEFT_TLS_B $WEFT_ADMIN_TLS_A $WEFT_ADMIN_TLS_B "$CONF/down-tls.yaml" "$CONF/up-tls.yaml"
	start_haproxy haproxy $HAPROXY_A $HAPROXY_B 0
	start_haproxy haproxy-tls $HAPROXY_TLS_A $HAPROXY_TLS_B 1

	bench_h1 direct $BACKEND
	for p in "${SETUPS[@]}"; do measure "$p"; done
	rounds "${SETUPS[@]}"

	if [[ -n ${UP[weft-mtls]:-} ]]; then
		handshakes weft-full "$WEFT_TLS_B" "${PID[weft-mtls-b]}"
		handshakes weft-full-x25519 "$WEFT_TLS_B" "${PID[weft-mtls-b]}" -curves x25519
		handshakes weft-resumed "$WEFT_TLS_B" "${PID[weft-mtls-b]}" -resume
	fi
	if [[ -n ${UP[haproxy-tls]:-} ]]; then
		handshakes haproxy-full "$HAPROXY_TLS_B" "${PID[haproxy-tls-b]}"
		handshakes haproxy-resumed "$HAPROXY_TLS_B" "${PID[haproxy-tls-b]}" -resume
	fi

	report >"$OUT/RESULTS-mtls.md"
	cp "$OUT/RESULTS-mtls.md" "$RESULTS"
	cat "$OUT/RESULTS-mtls.md"
	log "done in $((SECONDS - began))s; report written to $RESULTS"
}

main "$@"
