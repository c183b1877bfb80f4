#!/usr/bin/env bash
# Compares our engine with the designs users would otherwise build: the
# fasthttp ceiling, orderd, the Redis reference server (AOF everysec and
# always) and the PostgreSQL one, on the same machine, same workloads, same
# duration, ROUNDS times with the server order reversed every other round.
# Writes docs/benchmarks.md and docs/bench/*.png (see bench/ and
# bench/orderbench). Needs redis-server and postgresql; installs them with
# apt-get when missing and run as root.
#
#   DURATION=10s ROUNDS=3 scripts/bench-compare.sh
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-64}
SKUS=${SKUS:-10000}
WORKLOADS=${WORKLOADS:-uniform hot zipf mixed}
SERVERS=${SERVERS:-ceiling orderd redis-everysec redis-always postgres}
FLASH_STOCK=${FLASH_STOCK:-1000}
FLASH_DURATION=${FLASH_DURATION:-3s}
OUT_MD=${OUT_MD:-docs/benchmarks.md}
PLOTS=${PLOTS:-docs/bench}

source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"
bench_init
RESULTS="$BENCH_TMP/results"
mkdir -p "$RESULTS/main" "$RESULTS/flash"
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

# measure ROUND LABEL WORKLOAD: one orderbench run, JSON kept for the report.
measure() {
	local round=$1 label=$2 wl=$3 verify=true out
	[[ $label == ceiling ]] && verify=false
	out="$RESULTS/main/r$round-$label-$wl.json"
	local cmd=("$BIN/orderbench" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round "$round"
		-workload "$wl" -skus "$SKUS" -duration "$DURATION" -warmup "$WARMUP" -concurrency "$CONCURRENCY"
		-seed "$round" -verify="$verify" -format json)
	[[ $round == 1 ]] && echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	if ! "${cmd[@]}" >"$out.tmp" 2>"$out.err"; then
		echo "  $label $wl: orderbench failed: $(tail -1 "$out.err")" >&2
		FAILURES=$((FAILURES + 1))
	fi
	if [[ -s "$out.tmp" ]]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
	[[ -s "$out.err" ]] || rm -f "$out.err"
	[[ -f $out ]] && printf '  %-15s %-8s %s\n' "$label" "$wl" \
		"$(grep -m1 '"rps"' "$out" | tr -d ' ,') $(grep -m1 '"p99"' "$out" | tr -d ' ,')"
	return 0
}

# flash ROUND LABEL: a sell-out of FLASH_STOCK units on one SKU; only the stock check matters.
flash() {
	local round=$1 label=$2 out="$RESULTS/flash/r$1-$2.json"
	local cmd=("$BIN/orderbench" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round "$round"
		-workload hot -stock "$FLASH_STOCK" -duration "$FLASH_DURATION" -warmup 0s -concurrency "$CONCURRENCY"
		-seed "$round" -format json)
	[[ $round == 1 ]] && echo "    orderbench ${cmd[*]:1}" >>"$CMDS"
	if ! "${cmd[@]}" >"$out.tmp" 2>"$out.err"; then
		echo "  $label flash sale: orderbench failed: $(tail -1 "$out.err")" >&2
		FAILURES=$((FAILURES + 1))
	fi
	if [[ -s "$out.tmp" ]]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
	[[ -s "$out.err" ]] || rm -f "$out.err"
	return 0
}

{
	echo "## Commands"
	echo
	echo "    $(for v in DURATION WARMUP ROUNDS CONCURRENCY SKUS; do printf '%s=%s ' "$v" "${!v}"; done)WORKLOADS='$WORKLOADS' SERVERS='$SERVERS' scripts/bench-compare.sh"
	echo
	echo "Each round starts every server afresh for each workload (new data directory, free port on 127.0.0.1)"
	echo "and runs (round 1 shown; ports change every run):"
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
		# A fresh server (new data directory) for every workload, so no run
		# inherits the state or the compactions of the one before it.
		for wl in $WORKLOADS flash; do
			[[ $wl == flash && $label == ceiling ]] && continue
			if ! start_server "$label"; then
				FAILURES=$((FAILURES + 1))
				echo "  $label did not start; $wl skipped. Log tails:" >&2
				tail -3 "$BENCH_TMP"/*.log >&2 || true
				bench_stop_all
				continue
			fi
			if [[ $wl == flash ]]; then flash "$round" "$label"; else measure "$round" "$label" "$wl"; fi
			bench_stop_all
		done
	done
done

{
	echo
	echo "Then: \`orderbench report -in RESULTS -flash RESULTS/flash -out $OUT_MD -plots $PLOTS -meta META\`."
	echo
	bench_machine
} >>"$CMDS"
mkdir -p "$(dirname "$OUT_MD")" "$PLOTS"
"$BIN/orderbench" report -in "$RESULTS/main" -flash "$RESULTS/flash" -out "$OUT_MD" -plots "$PLOTS" -meta "$CMDS"
if [[ -n "${KEEP_RESULTS:-}" ]]; then
	mkdir -p "$KEEP_RESULTS" && cp -r "$RESULTS/." "$KEEP_RESULTS/"
fi
if ((FAILURES > 0)); then
	echo "$FAILURES runs failed (see above); the report marks them" >&2
	exit 1
fi
