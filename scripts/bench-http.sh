#!/usr/bin/env bash
# Checkouts per second and p50/p99 of orderd over HTTP on 127.0.0.1, for
# (a) SKUS SKUs chosen uniformly and (b) one hot SKU, measured side by side
# with a minimal fasthttp JSON handler that does no engine work (the ceiling):
# the ratio to the ceiling is the figure to compare across machines. Each
# server is measured by orderbench (Go) and by wrk (C, bench/wrk/checkout.lua;
# installed with apt-get when missing), each against a fresh server.
#
#   DURATION=10s scripts/bench-http.sh
#   GENERATORS=orderbench scripts/bench-http.sh # without wrk
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-64}
SKUS=${SKUS:-10000}
SERVERS=${SERVERS:-ceiling orderd}
GENERATORS=${GENERATORS:-orderbench wrk}
WRK_THREADS=${WRK_THREADS:-1}
for g in $GENERATORS; do
	[[ $g == orderbench || $g == wrk ]] || { echo "GENERATORS: unknown load generator $g (want orderbench, wrk)" >&2; exit 2; }
done

source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"
bench_init
RESULTS="$BENCH_TMP/results"
mkdir -p "$RESULTS"

if [[ " $SERVERS " == *" orderd "* ]] && ! build_orderd; then
	echo "cmd/orderd does not build:" >&2
	cat "$BENCH_TMP/orderd-build.log" >&2
	exit 1
fi
[[ " $GENERATORS " == *" wrk "* ]] && bench_ensure_wrk

failed=0
for label in $SERVERS; do
	verify=true
	[[ $label == ceiling ]] && verify=false
	for wl in uniform hot; do
		for gen in $GENERATORS; do
			start_server "$label" # afresh for each workload and generator, as bench-compare does
			out="$RESULTS/$label-$wl-$gen.json"
			cmd=("$BIN/orderbench")
			[[ $gen == wrk ]] && cmd+=(wrk -threads "$WRK_THREADS" -script bench/wrk/checkout.lua)
			if ! "${cmd[@]}" -url "$SERVER_URL" -token "$BENCH_TOKEN" -label "$label" -round 1 \
				-workload "$wl" -skus "$SKUS" -duration "$DURATION" -warmup "$WARMUP" \
				-concurrency "$CONCURRENCY" -verify="$verify" -format json >"$out"; then
				failed=1
			fi
			[[ -s $out ]] || rm -f "$out"
			bench_stop_all
		done
	done
done

"$BIN/orderbench" report -in "$RESULTS" -out "$BENCH_TMP/http.md" -plots "$BENCH_TMP/plots" >/dev/null
# The tables only: durations and ratios, no plots.
sed -n '/^## Workload `/,/^## Every measurement/p' "$BENCH_TMP/http.md" | grep -v '^!\[\|^## Every'
exit "$failed"
