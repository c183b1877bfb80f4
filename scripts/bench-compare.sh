#!/usr/bin/env bash
# Compares our engine with the designs users would otherwise build: the
# fasthttp ceiling, orderd, the Redis reference server (AOF everysec and
# always) and the PostgreSQL one, on the same machine, same workloads, same
# duration, ROUNDS times with the server order reversed every other round.
# Two load generators measure each server, each against a fresh one: orderbench
# (Go, every workload) and wrk (C, uniform and hot, bench/wrk/checkout.lua),
# because on a small machine the Go client's CPU compresses every ratio.
# Then each server, afresh, gets half the highest rate it answered (wrk's
# figure when wrk ran) in an open loop (orderbench -rate, uniform and hot), for
# its latency with headroom and free of coordinated omission (HALF_RATE=0 leaves
# this out).
# Writes docs/benchmarks.md and docs/bench/*.png (see bench/ and
# bench/orderbench). Needs redis-server, postgresql and wrk; installs them with
# apt-get when missing and run as root.
#
#   DURATION=10s ROUNDS=3 scripts/bench-compare.sh
#   GENERATORS=orderbench scripts/bench-compare.sh # without wrk
#   HALF_RATE=0 scripts/bench-compare.sh           # without the open-loop runs
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-64}
SKUS=${SKUS:-10000}
WORKLOADS=${WORKLOADS:-uniform hot zipf mixed}
SERVERS=${SERVERS:-ceiling orderd redis-everysec redis-always postgres}
GENERATORS=${GENERATORS:-orderbench wrk}
WRK_THREADS=${WRK_THREADS:-1}   # wrk -t: one thread leaves the other core to the server
WRK_STATUSES=${WRK_STATUSES:-1} # 0: wrk's 2xx/non-2xx split instead of counts per status, less wrk CPU
HALF_RATE=${HALF_RATE:-1}                 # 0: no open-loop runs at half the maximum rate
OPEN_CONCURRENCY=${OPEN_CONCURRENCY:-512} # open loop: requests in flight at most
FLASH_STOCK=${FLASH_STOCK:-1000}
FLASH_DURATION=${FLASH_DURATION:-3s}
OUT_MD=${OUT_MD:-docs/benchmarks.md}
PLOTS=${PLOTS:-docs/bench}

for g in $GENERATORS; do
	[[ $g == orderbench || $g == wrk ]] || { echo "GENERATORS: unknown load generator $g (want orderbench, wrk)" >&2; exit 2; }
done

source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"
bench_init
RESULTS="$BENCH_TMP/results"
mkdir -p "$RESULTS/main" "$RESULTS/flash" "$RESULTS/open"
CMDS="$BENCH_TMP/commands.md"

FAILURES=0
servers=()
for s in $SERVERS; do
	if [[ $s == orderd ]] && ! build_orderd; then
		echo "WARNING: cmd/orderd does not build; orderd is left out of this comparison:" >&2
		tail -5 "$BENCH_TMP/orderd-build.log" >&2
		continue
	fi
	servers+=("$s")
done
[[ " ${servers[*]} " == *" postgres "* ]] && bench_ensure_pg
[[ " ${servers[*]} " == *" redis-"* ]] && bench_ensure_redis
[[ " $GENERATORS " == *" wrk "* ]] && bench_ensure_wrk

# record OUT WHAT CMD...: runs a load generator; its JSON is kept for the report.
record() {
	local out=$1 what=$2
	shift 2
	if ! "$@" >"$out.tmp" 2>"$out.err"; then
		echo "  $what: $(basename "$1") failed: $(tail -1 "$out.err")" >&2
		FAILURES=$((FAILURES + 1))
	fi
	if [[ -s "$out.tmp" ]]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
	[[ -s "$out.err" ]] || rm -f "$out.err"
	return 0
}

# show OUT: the headline of one result.
show() {
	[[ -f $1 ]] && printf '  %-15s %-8s %-10s %s\n' "$(json_field label "$1")" "$(json_field workload "$1")" \
		"$(json_field generator "$1")" "$(grep -m1 '"rps"' "$1" | tr -d ' ,') $(grep -m1 '"p99"' "$1" | tr -d ' ,')"
	return 0
}
json_field() { grep -m1 "\"$1\":" "$2" | cut -d'"' -f4; }

# measure ROUND LABEL WORKLOAD: one orderbench run.
measure() {
	local round=$1 label=$2 wl=$3 verify=true out
	[[ $label == ceiling ]] && verify=false
	out="$RESULTS/main/r$round-$label-$wl.json"
	local cmd=("$BIN/orderbench" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round "$round"
		-workload "$wl" -skus "$SKUS" -duration "$DURATION" -warmup "$WARMUP" -concurrency "$CONCURRENCY"
		-seed "$round" -verify="$verify" -format json)
	[[ $round == 1 ]] && echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	record "$out" "$label $wl" "${cmd[@]}"
	show "$out"
}

# measure_wrk ROUND LABEL WORKLOAD: the same workload under wrk (uniform and
# hot only): orderbench wrk restocks, runs wrk for WARMUP then DURATION with
# bench/wrk/checkout.lua, and reads the stock back.
measure_wrk() {
	local round=$1 label=$2 wl=$3 verify=true out
	[[ $label == ceiling ]] && verify=false
	out="$RESULTS/main/r$round-$label-$wl-wrk.json"
	local cmd=("$BIN/orderbench" wrk -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round "$round"
		-workload "$wl" -skus "$SKUS" -duration "$DURATION" -warmup "$WARMUP" -concurrency "$CONCURRENCY"
		-threads "$WRK_THREADS" -statuses="$([[ $WRK_STATUSES == 0 ]] && echo false || echo true)"
		-script bench/wrk/checkout.lua -seed "$round" -verify="$verify" -format json)
	[[ $round == 1 ]] && echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	record "$out" "$label $wl (wrk)" "${cmd[@]}"
	show "$out"
}

# fresh LABEL WHAT CMD...: starts LABEL afresh (new data directory), runs CMD,
# stops it, so no run inherits the state or the compactions of the one before.
fresh() {
	local label=$1 what=$2
	shift 2
	if ! start_server "$label"; then
		FAILURES=$((FAILURES + 1))
		echo "  $label did not start; $what skipped. Log tails:" >&2
		tail -3 "$BENCH_TMP"/*.log >&2 || true
		bench_stop_all
		return 0
	fi
	"$@"
	bench_stop_all
}

# max_rps LABEL WORKLOAD prints the highest req/s of LABEL's closed-loop rounds
# on WORKLOAD: wrk's when wrk measured it, else orderbench's; nothing when
# neither did.
max_rps() {
	local label=$1 wl=$2 files
	files=("$RESULTS/main/r"*"-$label-$wl-wrk.json")
	[[ -f ${files[0]} ]] || files=("$RESULTS/main/r"*"-$label-$wl.json")
	[[ -f ${files[0]} ]] || return 0
	grep -h -m1 '"rps":' "${files[@]}" | tr -d ' ,' | cut -d: -f2 | sort -g | tail -1
}

# measure_open LABEL WORKLOAD RATE: one orderbench run in an open loop at RATE
# requests/s; latency runs from each request's scheduled time.
measure_open() {
	local label=$1 wl=$2 rate=$3 verify=true out
	[[ $label == ceiling ]] && verify=false
	out="$RESULTS/open/r1-$label-$wl-open.json"
	local cmd=("$BIN/orderbench" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round 1
		-workload "$wl" -skus "$SKUS" -duration "$DURATION" -warmup "$WARMUP" -rate "$rate"
		-concurrency "$OPEN_CONCURRENCY" -seed 1 -verify="$verify" -format json)
	echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	record "$out" "$label $wl (open loop)" "${cmd[@]}"
	show "$out"
}

# flash ROUND LABEL: a sell-out of FLASH_STOCK units on one SKU; only the stock check matters.
flash() {
	local round=$1 label=$2 out="$RESULTS/flash/r$1-$2.json"
	local cmd=("$BIN/orderbench" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round "$round"
		-workload hot -stock "$FLASH_STOCK" -duration "$FLASH_DURATION" -warmup 0s -concurrency "$CONCURRENCY"
		-seed "$round" -format json)
	[[ $round == 1 ]] && echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	record "$out" "$label flash sale" "${cmd[@]}"
}

{
	echo "## Commands"
	echo
	echo "    $(for v in DURATION WARMUP ROUNDS CONCURRENCY SKUS WRK_THREADS WRK_STATUSES HALF_RATE OPEN_CONCURRENCY; do printf '%s=%s ' "$v" "${!v}"; done)WORKLOADS='$WORKLOADS' SERVERS='$SERVERS' GENERATORS='$GENERATORS' scripts/bench-compare.sh"
	echo
	echo "Each round starts every server afresh for each workload and load generator (new data directory,"
	echo "free port on 127.0.0.1) and runs (round 1 shown; ports change every run):"
	echo
} >"$CMDS"

for ((round = 1; round <= ROUNDS; round++)); do
	order=("${servers[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
	fi
	echo "round $round/$ROUNDS: ${order[*]}"
	for label in "${order[@]}"; do
		[[ $round == 1 ]] && echo "  $label:" >>"$CMDS"
		for wl in $WORKLOADS; do
			for gen in $GENERATORS; do
				if [[ $gen == orderbench ]]; then
					fresh "$label" "$wl" measure "$round" "$label" "$wl"
				elif [[ $wl == uniform || $wl == hot ]]; then # wrk runs these two
					fresh "$label" "$wl (wrk)" measure_wrk "$round" "$label" "$wl"
				fi
			done
		done
		[[ $label == ceiling ]] || fresh "$label" "flash sale" flash "$round" "$label"
	done
done

if [[ " $GENERATORS " == *" wrk "* ]]; then
	{
		echo
		echo "\`orderbench wrk\` restocks, runs \`wrk -t THREADS -c CONCURRENCY -d WARMUP --timeout 5s --latency -s bench/wrk/checkout.lua URL -- PREFIX SKUS SEED 64\`,"
		echo "then the same for DURATION (the measured run), and reads every SKU back (\`-statuses=false\` puts"
		echo "CHECKOUT_STATUSES=0 in wrk's environment: the script then counts only wrk's 2xx/non-2xx split)."
	} >>"$CMDS"
fi

# The open loop at half the maximum rate: uniform and hot, the workloads both
# load generators run, each server afresh.
open_args=()
if [[ $HALF_RATE != 0 ]]; then
	echo "open loop at half the maximum rate: ${servers[*]}"
	{
		echo
		echo "Then, each server afresh, an open loop at half the highest req/s of its closed-loop rounds"
		echo "(wrk's when wrk ran, else orderbench's):"
		echo
	} >>"$CMDS"
	for label in "${servers[@]}"; do
		for wl in $WORKLOADS; do
			[[ $wl == uniform || $wl == hot ]] || continue
			half=$(awk -v r="$(max_rps "$label" "$wl")" 'BEGIN { printf "%d", r / 2 }')
			if ((half < 1)); then
				echo "  $label $wl: no closed-loop result to halve; open loop skipped" >&2
				continue
			fi
			fresh "$label" "$wl (open loop)" measure_open "$label" "$wl" "$half"
		done
	done
	open_args=(-open "$RESULTS/open")
fi

{
	echo
	echo "Then: \`orderbench report -in RESULTS -flash RESULTS/flash${open_args[*]:+ -open RESULTS/open} -out $OUT_MD -plots $PLOTS -meta META\`."
	echo
	bench_machine
} >>"$CMDS"
mkdir -p "$(dirname "$OUT_MD")" "$PLOTS"
"$BIN/orderbench" report -in "$RESULTS/main" -flash "$RESULTS/flash" -out "$OUT_MD" -plots "$PLOTS" -meta "$CMDS" "${open_args[@]}"
if [[ -n "${KEEP_RESULTS:-}" ]]; then
	mkdir -p "$KEEP_RESULTS" && cp -r "$RESULTS/." "$KEEP_RESULTS/"
fi
if ((FAILURES > 0)); then
	echo "$FAILURES runs failed (see above); the report marks them" >&2
	exit 1
fi
