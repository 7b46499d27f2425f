#!/usr/bin/env bash
# bench/chaos.sh: the chaos scenarios of e2e/chaos_test.go (weft) and
# e2e/chaos_haproxy_test.go (HAProxy, same program, same load generator),
# run once, their "chaos:" figure lines turned into tables in
# bench/RESULTS-chaos.md. What is measured and how: bench/README.md,
# section "Chaos". About 5 minutes.
#
# Knobs: CHAOS_RESULTS [bench/RESULTS-chaos.md] where the report goes.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."

RESULTS=${CHAOS_RESULTS:-bench/RESULTS-chaos.md}
LOGS=bench/out/logs
mkdir -p "$LOGS"
LOG=$LOGS/chaos.log

log() { printf '[chaos %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v haproxy >/dev/null; then
	log "installing haproxy"
	SUDO=""
	[[ $(id -u) == 0 ]] || SUDO=sudo
	$SUDO apt-get install -y haproxy >"$LOGS/chaos-apt.log" 2>&1 || log "could not install haproxy: the HAProxy rows will be missing"
fi

log "go test -run Chaos -v ./e2e/ (output in $LOG)"
start=$(date +%s)
set +e
WEFT_CHAOS=1 go test -count=1 -timeout 10m -run 'Chaos' -v ./e2e/ >"$LOG" 2>&1
status=$?
set -e
elapsed=$(($(date +%s) - start))
log "done in ${elapsed}s (go test exit status $status)"

# render: the "chaos: proxy=... scenario=... k=v ..." lines as one table
# per scenario, one row per proxy, columns in the order the keys appear.
# Tables follow SCENARIOS, then any other scenario in the order it appears.
SCENARIOS="kill flaky flaky-ewma slow breaker"
render() {
	grep -o 'chaos: proxy=.*' "$LOG" | sed 's/^chaos: //' | awk -v scenarios="$SCENARIOS" '
	BEGIN { n = split(scenarios, names, " "); for (s = 1; s <= n; s++) order[names[s]] = s }
	{
		row = ""; proxy = ""; scen = ""
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "proxy") { proxy = kv[2]; continue }
			if (kv[1] == "scenario") { scen = kv[2]; continue }
			if (!((scen, kv[1]) in seen)) { seen[scen, kv[1]] = 1; keys[scen] = keys[scen] " " kv[1] }
			val[scen, proxy, kv[1]] = kv[2]
		}
		if (!(scen in order)) { order[scen] = ++n; names[n] = scen }
		if (!((scen, proxy) in hasrow)) { hasrow[scen, proxy] = 1; rows[scen] = rows[scen] " " proxy }
	}
	END {
		for (s = 1; s <= n; s++) {
			sc = names[s]
			if (keys[sc] == "") continue
			nk = split(keys[sc], k, " ")
			np = split(rows[sc], p, " ")
			printf "\n### %s\n\n| proxy |", sc
			for (j = 1; j <= nk; j++) printf " %s |", k[j]
			printf "\n|---|"
			for (j = 1; j <= nk; j++) printf "---:|"
			printf "\n"
			for (r = 1; r <= np; r++) {
				printf "| %s |", p[r]
				for (j = 1; j <= nk; j++) { v = val[sc, p[r], k[j]]; printf " %s |", (v == "" ? "–" : v) }
				printf "\n"
			}
		}
	}'
}

{
	echo "# weft chaos figures"
	echo
	echo "Written by \`bench/chaos.sh\` on $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) CPUs,"
	echo "$(go version | cut -d' ' -f3), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3 || echo 'no haproxy'),"
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)'); the run took ${elapsed}s."
	echo "How the scenarios run and what each column means: bench/README.md, section \"Chaos\"."
	echo
	echo "Load: 200 requests/s open loop for 30 s (6,000 requests; the breaker 10 s),"
	echo "fault injected 5 s in, into one of three instances of the same program."
	render
	echo
	echo "## Test outcome"
	echo
	echo '```'
	grep -E '^\s*--- (PASS|FAIL|SKIP): TestChaos' "$LOG" || true
	grep -E '^\s+chaos(_haproxy)?_test\.go:[0-9]+: ' "$LOG" | grep -v 'chaos: proxy=' | grep -v 'mesh up and serving' || true
	grep -E '^(ok|FAIL|PASS)\b' "$LOG" || true
	echo '```'
} >"$RESULTS"
log "wrote $RESULTS"
cat "$RESULTS"
exit $status
