# bench/lib.sh: helpers shared by the benchmark drivers (run.sh, mtls.sh,
# telemetry.sh):
# processes, /proc measurements, the HTTP/1.1 throughput and latency steps,
# proxy configs and report formatting. Source it from the top level of a
# script (not from a function) after `set -euo pipefail`; it installs an EXIT
# trap that stops every process started with `start`.
#
# The functions read these globals of the sourcing script when called: LOGS
# (log folder), BIN (built tools), ROUNDS (alternating rounds), and
# H1_LATENCY_HOOK (optional: a function bench_h1 calls as
# `HOOK before|after SETUP` around its latency run). The knobs every driver
# shares are set here from the environment (defaults in brackets):
# BENCH_DURATION [10] seconds per throughput run, BENCH_WARMUP [3],
# BENCH_CONNS [50], BENCH_THREADS [2] (wrk), BENCH_RATE [1000] and
# BENCH_LAT_REQUESTS [10000] (latency runs), BENCH_ROUND_DURATION [5]
# seconds per alternating round, BENCH_LAT_ROUNDS [7] alternating latency
# rounds of BENCH_LAT_ROUND_REQUESTS [3000] requests per setup.
DUR=${BENCH_DURATION:-10}
WARM=${BENCH_WARMUP:-3}
CONNS=${BENCH_CONNS:-50}
THREADS=${BENCH_THREADS:-2}
RATE=${BENCH_RATE:-1000}
LATN=${BENCH_LAT_REQUESTS:-10000}
ROUND_DUR=${BENCH_ROUND_DURATION:-5}
LAT_ROUNDS=${BENCH_LAT_ROUNDS:-7}
LAT_ROUND_N=${BENCH_LAT_ROUND_REQUESTS:-3000}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes

declare -A PID=()    # name -> pid of every process this script started
STARTED=()           # names, in start order

# start NAME CMD...: runs CMD in the background, output to $LOGS/NAME.log.
start() {
	local name=$1
	shift
	# exec: $! is then the command's own pid, never a wrapping subshell.
	(exec "$@" >"$LOGS/$name.log" 2>&1) &
	PID[$name]=$!
	STARTED+=("$name")
}

# children PID: the direct children of PID (nginx workers).
children() { pgrep -P "$1" 2>/dev/null || true; }

# stop NAME: SIGTERM, wait up to 5s, then SIGKILL, for the process and its
# children.
stop() {
	local name=$1 pid=${PID[$1]:-}
	[[ -n $pid ]] || return 0
	unset "PID[$name]"
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	local kids
	kids=$(children "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) ignored SIGTERM for 5s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
}

cleanup() {
	local rc=$?
	local i
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[i]}"; done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# wait_port NAME PORT: until PORT accepts connections; fails if NAME exits.
wait_port() {
	local name=$1 port=$2
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		kill -0 "${PID[$name]}" 2>/dev/null || { tail -n 20 "$LOGS/$name.log" >&2; return 1; }
		sleep 0.1
	done
	log "$name: port $port not open after 10s"
	return 1
}

# wait_ready NAME ADMIN_PORT: until weft's /ready answers 200.
wait_ready() {
	local name=$1 port=$2
	for _ in $(seq 150); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready" 2>/dev/null) == 200 ]] && return 0
		kill -0 "${PID[$name]}" 2>/dev/null || { tail -n 20 "$LOGS/$name.log" >&2; return 1; }
		sleep 0.1
	done
	log "$name: /ready not 200 after 15s"
	return 1
}

# ------------------------------------------------------- /proc measurements

CLK_TCK=$(getconf CLK_TCK)

# tree PID...: the pids and their direct children.
tree() {
	local p
	for p in "$@"; do
		echo "$p"
		children "$p"
	done
}

# rss_kb PID...: VmRSS summed over the processes and their children, in KiB.
rss_kb() {
	local total=0 p v
	for p in $(tree "$@"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# cpu_ticks PID...: utime+stime summed over the processes and their children.
cpu_ticks() {
	local total=0 p v
	for p in $(tree "$@"); do
		# Fields after "(comm)": state is field 3, utime 14, stime 15.
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# ------------------------------------------------------------------ results

declare -A R=() # "<proto>.<setup>.<metric>" -> value
NOTES=()

note() {
	NOTES+=("$*")
	log "$*"
}

# kv KEY LINE: the value of KEY in a "k=v k=v" line.
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# check URL: "200 1024" when a request through URL gets the 1 KB body.
check_h1() { curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 "$1" || true; }

# measure_proxy PROTO SETUP PHASE PIDS...: reads /proc for the proxy pids.
# PHASE "idle" records RSS before any request; "before" the CPU counter;
# "load" samples RSS; "after" turns the CPU counter into seconds.
measure_proxy() {
	local key=$1.$2 phase=$3
	shift 3
	(($#)) || return 0
	case $phase in
	idle) R[$key.rss_idle]=$(rss_kb "$@") ;;
	before) R[$key.ticks0]=$(cpu_ticks "$@") ;;
	load) R[$key.rss_load]=$(rss_kb "$@") ;;
	after) R[$key.cpu]=$(calc %.2f "($(cpu_ticks "$@") - ${R[$key.ticks0]}) / $CLK_TCK") ;;
	esac
}

# latency PROTO SETUP MODE TARGET PIDS...: the fixed-rate run, with the
# proxies' CPU during it (cpu_fixed: % of one core; cpu_fixed_s: seconds).
latency() {
	local proto=$1 setup=$2 mode=$3 target=$4
	shift 4
	local extra=(-c 64)
	[[ $mode == http1 ]] || extra=(-c 64 -conns 1)
	local t0=0 line began ended
	(($#)) && t0=$(cpu_ticks "$@")
	began=$(date +%s.%N)
	if ! line=$(timeout $((LATN / RATE + 60)) "$BIN/loadgen" -mode "$mode" -target "$target" \
		-rate "$RATE" -n "$LATN" -warmup "$RATE" "${extra[@]}" 2>"$LOGS/loadgen-$proto-$setup.err"); then
		note "$proto/$setup: latency run failed: $(tail -n 3 "$LOGS/loadgen-$proto-$setup.err" | tr '\n' ' ')"
		return 0
	fi
	ended=$(date +%s.%N)
	log "$proto/$setup latency: $line"
	local k
	for k in p50_us p90_us p99_us max_us errors rate; do R[$proto.$setup.$k]=$(kv "$k" "$line"); done
	if (($#)); then
		local t1
		t1=$(cpu_ticks "$@")
		R[$proto.$setup.cpu_fixed]=$(calc %.0f "100 * ($t1 - $t0) / $CLK_TCK / ($ended - $began)")
		R[$proto.$setup.cpu_fixed_s]=$(calc %.2f "($t1 - $t0) / $CLK_TCK")
	fi
	if [[ ${R[$proto.$setup.errors]} != 0 ]]; then
		note "$proto/$setup: ${R[$proto.$setup.errors]} latency-run errors: $(head -n 1 "$LOGS/loadgen-$proto-$setup.err")"
	fi
}

# bench_h1 SETUP PORT PIDS...: HTTP/1.1 keep-alive throughput and latency.
bench_h1() {
	local setup=$1 port=$2
	shift 2
	local url=http://127.0.0.1:$port/ got
	measure_proxy h1 "$setup" idle "$@"
	got=$(check_h1 "$url")
	if [[ $got != "200 1024" ]]; then
		note "h1/$setup: check request got '$got', want '200 1024'; skipped"
		R[h1.$setup.failed]=1
		return 0
	fi
	log "h1/$setup: warm-up ${WARM}s"
	timeout $((WARM + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" "$url" >/dev/null 2>&1 || true
	measure_proxy h1 "$setup" before "$@"
	log "h1/$setup: throughput ${DUR}s, $CONNS connections"
	timeout $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" "$url" >"$LOGS/wrk-$setup.txt" 2>&1 &
	local wrk=$!
	sleep "$(calc %.1f "$DUR * 0.6")"
	measure_proxy h1 "$setup" load "$@"
	wait "$wrk" || note "h1/$setup: wrk exited $?"
	measure_proxy h1 "$setup" after "$@"
	R[h1.$setup.rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$LOGS/wrk-$setup.txt")
	local bad
	bad=$(grep -E 'Non-2xx|Socket errors' "$LOGS/wrk-$setup.txt" | tr -s ' ' | tr '\n' ';' || true)
	[[ -z $bad ]] || note "h1/$setup: wrk reported: $bad"
	log "h1/$setup: ${R[h1.$setup.rps]:-?} req/s"
	[[ -z ${H1_LATENCY_HOOK:-} ]] || "$H1_LATENCY_HOOK" before "$setup"
	latency h1 "$setup" http1 "$url" "$@"
	[[ -z ${H1_LATENCY_HOOK:-} ]] || "$H1_LATENCY_HOOK" after "$setup"
}

# ------------------------------------------------------------------ configs

# weft_bootstrap FILE "NAME LISTEN UPSTREAM H2 [DOWN_TLS [UP_TLS]]"...: an
# Envoy v3 bootstrap with one listener per spec, each routing everything to a
# STATIC cluster with one endpoint; H2=1 makes the cluster speak h2c
# upstream. DOWN_TLS and UP_TLS, when given and not "-", name files holding a
# transport_socket block (YAML indented for its place) that is copied into
# the listener's filter chain and into the cluster.
weft_bootstrap() {
	local file=$1
	shift
	{
		echo "static_resources:"
		echo "  listeners:"
		local spec name listen upstream h2 down up
		for spec in "$@"; do
			read -r name listen upstream h2 down up <<<"$spec"
			cat <<EOF
  - name: $name
    address: {socket_address: {address: 127.0.0.1, port_value: $listen}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $name
          route_config:
            name: $name
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: ${name}_next}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
EOF
			[[ -z ${down:-} || $down == - ]] || cat "$down"
		done
		echo "  clusters:"
		for spec in "$@"; do
			read -r name listen upstream h2 down up <<<"$spec"
			cluster_yaml "${name}_next" 127.0.0.1 "$upstream" "$h2" "${up:-}"
		done
	} >"$file"
}

# cluster_yaml NAME ADDR PORT H2 [UP_TLS]: one STATIC cluster; UP_TLS as in
# weft_bootstrap.
cluster_yaml() {
	cat <<EOF
  - name: $1
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: $1
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: $2, port_value: $3}}}
EOF
	if [[ $4 == 1 ]]; then
		cat <<EOF
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
EOF
	fi
	[[ -z ${5:-} || $5 == - ]] || cat "$5"
}

# haproxy_cfg FILE LISTEN UPSTREAM [BIND_OPTS [SERVER_OPTS]]: one HAProxy hop;
# the options are appended to the bind and server lines (TLS).
haproxy_cfg() {
	cat >"$1" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always
frontend hop
    bind 127.0.0.1:$2${4:+ $4}
    default_backend next
backend next
    server s1 127.0.0.1:$3${5:+ $5}
EOF
}

# -------------------------------------------------------------------- setup

# install_tools COMMAND[:PACKAGE]...: apt-get installs the packages of the
# commands that are missing (PACKAGE defaults to COMMAND).
install_tools() {
	local need=() sudo= t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
	done
	((${#need[@]})) || return 0
	command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get: install them by hand"
	[[ $(id -u) == 0 ]] || sudo=sudo
	log "installing ${need[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

build() {
	log "building bin/weft, bench backend and loadgen"
	mkdir -p "$BIN" bin
	WEFT_OK=1
	if ! go build -o bin/weft ./cmd/weft 2>"$LOGS/build-weft.log"; then
		WEFT_OK=0
		note "weft: go build ./cmd/weft failed; weft rows skipped: $(head -n 3 "$LOGS/build-weft.log" | tr '\n' ' ')"
	fi
	go build -o "$BIN/backend" ./bench/backend
	go build -o "$BIN/loadgen" ./bench/loadgen
}

# ------------------------------------------------------------------- report

us() { [[ -n ${1:-} ]] && echo "$1" || echo "–"; }
mb() { [[ -n ${1:-} ]] && calc %.1f "$1 / 1024" || echo "–"; }
num() { [[ -n ${1:-} ]] && echo "$1" || echo "–"; }
# added PROTO SETUP PCT: latency added over direct, in µs.
added() {
	local a=${R[$1.$2.$3]:-} d=${R[$1.direct.$3]:-}
	[[ -n $a && -n $d ]] && echo $((a - d)) || echo "–"
}
# ratio A B: A/B with two decimals, or – when either is missing or B <= 0.
ratio() {
	[[ -n ${1:-} && -n ${2:-} && $1 != – && $2 != – ]] || { echo "–"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 <= 0) print "–"; else printf "%.2f", a / b }'
}
# per_req PROTO SETUP: CPU microseconds per request in the throughput run.
per_req() {
	local c=${R[$1.$2.cpu]:-} r=${R[$1.$2.rps]:-}
	[[ -n $c && -n $r && $r != 0 ]] && calc %.1f "$c * 1000000 / ($r * $DUR)" || echo "–"
}
verdict() { # VALUE OP LIMIT
	[[ $1 == – ]] && { echo "not measured"; return; }
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "met" : "missed" }'
}

# per_req_fixed SETUP: CPU microseconds per request in the fixed-rate run
# (its warm-up requests included, as its CPU time is).
per_req_fixed() {
	local c=${R[h1.$1.cpu_fixed_s]:-}
	[[ -n $c ]] && calc %.1f "$c * 1000000 / ($LATN + $RATE)" || echo "–"
}

# ------------------------------------------------- alternating rounds

# rounds SETUP...: ROUNDS rounds of ROUND_DUR-second wrk runs through each
# running setup in turn (the order rotated every round), with the CPU of
# both hops: a setup's slow and fast moments of the shared machine are then
# spread over all setups. A setup runs when UP[SETUP] is set; wrk goes to
# PORT_A[SETUP]; its hops are the processes started as SETUP-a and SETUP-b.
# Stores rd.SETUP.I.{rps,us} (CPU µs per request). ROUND_HOOK, when set, is
# called as `HOOK before|after SETUP I` just before the CPU is first read
# and just after wrk ends (before it is read again).
rounds() {
	local setups=("$@") i j n=$# s t0 rps f
	for ((i = 0; i < ROUNDS; i++)); do
		for ((j = 0; j < n; j++)); do
			s=${setups[(i + j) % n]}
			[[ -n ${UP[$s]:-} ]] || continue
			f=$LOGS/wrk-round-$s-$i.txt
			[[ -z ${ROUND_HOOK:-} ]] || "$ROUND_HOOK" before "$s" "$i"
			t0=$(cpu_ticks "${PID[$s-a]}" "${PID[$s-b]}")
			timeout $((ROUND_DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${ROUND_DUR}s" "http://127.0.0.1:${PORT_A[$s]}/" >"$f" 2>&1 ||
				note "round $i/$s: wrk exited $?"
			[[ -z ${ROUND_HOOK:-} ]] || "$ROUND_HOOK" after "$s" "$i"
			rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
			[[ -n $rps && $rps != 0 ]] || { note "round $i/$s: no requests/s in $f"; continue; }
			R[rd.$s.$i.rps]=$rps
			R[rd.$s.$i.us]=$(calc %.1f "($(cpu_ticks "${PID[$s-a]}" "${PID[$s-b]}") - $t0) / $CLK_TCK * 1000000 / ($rps * $ROUND_DUR)")
			grep -qE 'Non-2xx|Socket errors' "$f" && note "round $i/$s: wrk reported: $(grep -E 'Non-2xx|Socket errors' "$f" | tr -s ' ' | tr '\n' ';')"
			log "round $i/$s: $rps req/s, ${R[rd.$s.$i.us]} CPU µs/req"
		done
	done
}

# latency_rounds SETUP...: LAT_ROUNDS rounds of fixed-rate runs
# (LAT_ROUND_N measured requests at RATE after RATE/2 warm-up ones, as
# latency's) through each setup in turn, the order rotated every round, so
# that the setups compared within a round met the same state of the shared
# machine. LAT_TARGET[SETUP] is the URL; every setup must be running.
# Stores lr.SETUP.I.p99 (µs).
latency_rounds() {
	local setups=("$@") i j n=$# s line f
	for ((i = 0; i < LAT_ROUNDS; i++)); do
		for ((j = 0; j < n; j++)); do
			s=${setups[(i + j) % n]}
			f=$LOGS/loadgen-round-$s-$i.err
			if ! line=$(timeout $((LAT_ROUND_N / RATE + 60)) "$BIN/loadgen" -mode http1 -target "${LAT_TARGET[$s]}" \
				-rate "$RATE" -n "$LAT_ROUND_N" -warmup $((RATE / 2)) -c 64 2>"$f"); then
				note "latency round $i/$s failed: $(tail -n 3 "$f" | tr '\n' ' ')"
				continue
			fi
			R[lr.$s.$i.p99]=$(kv p99_us "$line")
			[[ $(kv errors "$line") == 0 ]] || note "latency round $i/$s: $(kv errors "$line") errors"
			log "latency round $i/$s: p99 ${R[lr.$s.$i.p99]} µs"
		done
	done
}

# lat_round_values SETUP: the setup's p99 per latency round.
lat_round_values() {
	local i
	for ((i = 0; i < LAT_ROUNDS; i++)); do
		[[ -z ${R[lr.$1.$i.p99]:-} ]] || echo "${R[lr.$1.$i.p99]}"
	done
}

# lat_round_ratio A B: the median over latency rounds of A's p99 added over
# direct's in the same round, over B's.
lat_round_ratio() {
	local i v=() d a b r
	for ((i = 0; i < LAT_ROUNDS; i++)); do
		d=${R[lr.direct.$i.p99]:-} a=${R[lr.$1.$i.p99]:-} b=${R[lr.$2.$i.p99]:-}
		[[ -n $d && -n $a && -n $b ]] || continue
		r=$(ratio $((a - d)) $((b - d)))
		[[ $r == – ]] || v+=("$r")
	done
	median %.2f "${v[@]}"
}

# lat_round_added SETUP: the median over latency rounds of the setup's p99
# added over direct's in the same round (µs).
lat_round_added() {
	local i v=() d a
	for ((i = 0; i < LAT_ROUNDS; i++)); do
		d=${R[lr.direct.$i.p99]:-} a=${R[lr.$1.$i.p99]:-}
		[[ -n $d && -n $a ]] && v+=($((a - d)))
	done
	median %.0f "${v[@]}"
}

# median FORMAT VALUE...: the median (mean of the middle two for an even
# count) printed with the printf FORMAT; – for none.
median() {
	local fmt=$1
	shift
	(($#)) || { echo "–"; return; }
	printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{ v[NR] = $1 } END { printf f, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# round_values SETUP METRIC: the setup's values of METRIC, one per round.
round_values() {
	local i
	for ((i = 0; i < ROUNDS; i++)); do
		[[ -z ${R[rd.$1.$i.$2]:-} ]] || echo "${R[rd.$1.$i.$2]}"
	done
}

# round_ratios A B METRIC: A's METRIC (us: CPU µs/req, rps) over B's in
# the same round, one per round (rounds without both left out).
round_ratios() {
	local i r m=$3
	for ((i = 0; i < ROUNDS; i++)); do
		[[ -n ${R[rd.$1.$i.$m]:-} && -n ${R[rd.$2.$i.$m]:-} ]] || continue
		r=$(ratio "${R[rd.$1.$i.$m]}" "${R[rd.$2.$i.$m]}")
		[[ $r == – ]] || echo "$r"
	done
}

# round_ratio A B METRIC: the median of round_ratios.
round_ratio() {
	local v
	mapfile -t v < <(round_ratios "$@")
	median %.2f "${v[@]}"
}

# spread VALUES...: the values sorted, and the range of the middle half
# (lower to upper quartile, nearest rank), as "sorted: …; middle half: a–b".
spread() {
	(($#)) || { echo "–"; return; }
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		for (i = 1; i <= NR; i++) s = s (i > 1 ? " " : "") sprintf("%.2f", v[i])
		lo = int((NR + 3) / 4); hi = NR + 1 - lo
		printf "sorted: %s; middle half: %.2f–%.2f", s, v[lo], v[hi] }'
}

# h1_rows LABELS SETUP...: the rows of the two-hop HTTP/1.1 table of
# mtls.sh and telemetry.sh; LABELS names the associative array holding the
# second column (what differs between the setups).
h1_rows() {
	local -n label=$1
	shift
	local s
	for s in "$@"; do
		if [[ -n ${R[h1.$s.failed]:-} ]]; then
			echo "| $s | failed: see notes | | | | | | | | |"
			continue
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" "${label[$s]}" \
			"$(num "${R[h1.$s.rps]:-}")" \
			"$(us "${R[h1.$s.p50_us]:-}")" "$(us "${R[h1.$s.p99_us]:-}")" \
			"$(added h1 "$s" p99_us)" \
			"$(num "${R[h1.$s.cpu]:-}")" "$(per_req h1 "$s")" \
			"$(num "${R[h1.$s.cpu_fixed]:-}")" "$(per_req_fixed "$s")"
	done
}
