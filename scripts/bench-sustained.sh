#!/usr/bin/env bash
# Minutes of load on ONE fresh orderd: HOT_DURATION of checkouts on a single
# hot SKU, then UNIFORM_DURATION of checkouts spread over SKUS SKUs, against
# the same process, with checkouts/s, latency and the server's RSS reported
# every WINDOW. The other benchmarks run seconds on fresh nodes and cannot see
# a cost that grows with the history the server holds; this one can.
#
# Writes CSV (docs/bench/sustained.csv), PLOT (docs/bench/sustained.png) and
# the "Sustained load" section of OUT_MD (docs/benchmarks.md), replacing the
# one a previous run wrote. Exits non-zero when the stock check finds oversell
# or lost reservations, or when anything else fails; orderd's log is kept then.
#
#   HOT_DURATION=120s UNIFORM_DURATION=60s WINDOW=10s CONNECTIONS=64 scripts/bench-sustained.sh
#   ORDERD_BIN=/tmp/orderd-base ORDERD_INFO='built from 10f760e' ORDERD_FLAGS='-snapshot-every 500' scripts/bench-sustained.sh
set -euo pipefail

HOT_DURATION=${HOT_DURATION:-120s}
UNIFORM_DURATION=${UNIFORM_DURATION:-60s}
WINDOW=${WINDOW:-10s}
CONNECTIONS=${CONNECTIONS:-64}
SKUS=${SKUS:-10000}
WARMUP=${WARMUP:-2s}
TTL=${TTL:-0}                  # ttl_seconds of each checkout; 0 keeps orderd's 900 s
ORDERD_FLAGS=${ORDERD_FLAGS:-} # passed to orderd as they are, after ours (so they win)
ORDERD_BIN=${ORDERD_BIN:-}     # a prebuilt orderd; empty builds ./cmd/orderd
ORDERD_INFO=${ORDERD_INFO:-}   # what ORDERD_BIN is (e.g. "built from 10f760e"), for the report
OUT_MD=${OUT_MD:-docs/benchmarks.md}
PLOT=${PLOT:-docs/bench/sustained.png}
CSV=${CSV:-docs/bench/sustained.csv}

source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"
bench_init

# Unlike the other benches, a failure keeps the temporary directory with
# orderd's log (not its data, which can be large after minutes of load), and
# says where it is.
ORDERD_LOG=
sustained_exit() {
	local rc=$?
	bench_stop_all
	if ((rc == 0)); then
		rm -rf "$BENCH_TMP"
	else
		rm -rf "$BENCH_TMP/bin" "$BENCH_TMP"/orderd-data.*
		if [[ -n $ORDERD_LOG ]]; then
			echo "bench-sustained failed (exit $rc); orderd's log: $ORDERD_LOG" >&2
			tail -n 20 "$ORDERD_LOG" >&2 || true
		else
			echo "bench-sustained failed (exit $rc) before orderd started; logs in $BENCH_TMP" >&2
		fi
	fi
	exit "$rc"
}
trap sustained_exit EXIT

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -z $ORDERD_BIN ]]; then
	if ! go build -o "$BIN/orderd" ./cmd/orderd >"$BENCH_TMP/orderd-build.log" 2>&1; then
		echo "cmd/orderd does not build; set ORDERD_BIN to a prebuilt orderd to measure that instead:" >&2
		cat "$BENCH_TMP/orderd-build.log" >&2
		exit 1
	fi
	ORDERD_BIN=$BIN/orderd
	dirty=
	git diff --quiet HEAD -- 2>/dev/null || dirty=" plus uncommitted changes"
	info="orderd built from commit $commit$dirty"
else
	# A prebuilt binary need not match this checkout; only ORDERD_INFO can say what it is.
	info="orderd from ORDERD_BIN=$ORDERD_BIN (${ORDERD_INFO:-prebuilt; this checkout is at $commit})"
fi
[[ -n $ORDERD_FLAGS ]] && info+=", flags: $ORDERD_FLAGS"

port=$(bench_free_port)
data=$(mktemp -d "$BENCH_TMP/orderd-data.XXXXXX")
# shellcheck disable=SC2086 # ORDERD_FLAGS is a list of flags, split on purpose.
bench_start orderd "$ORDERD_BIN" -data "$data" -http "127.0.0.1:$port" \
	-admin-token "$BENCH_TOKEN" -log-level warn $ORDERD_FLAGS
ORDERD_PID=${BENCH_PIDS[-1]}
ORDERD_LOG=$BENCH_TMP/orderd.log
SERVER_URL="http://127.0.0.1:$port"
# Like bench_wait_http, but an orderd that exits (a bad flag in ORDERD_FLAGS)
# fails the run at once instead of after the whole timeout.
for ((i = 0; ; i++)); do
	curl -fsS -o /dev/null --max-time 1 "$SERVER_URL/readyz" 2>/dev/null && break
	if ! kill -0 "$ORDERD_PID" 2>/dev/null; then
		echo "orderd exited before it was ready" >&2
		exit 1
	fi
	if ((i >= BENCH_READY_TIMEOUT_S * 10)); then
		echo "$SERVER_URL/readyz did not answer 200 within ${BENCH_READY_TIMEOUT_S}s" >&2
		exit 1
	fi
	sleep 0.1
done
echo "orderd pid $ORDERD_PID on $SERVER_URL, data in $data, log in $ORDERD_LOG"

# The command quoted in the report: the knobs that shape the run, and any
# that differ from their defaults.
repro="HOT_DURATION=$HOT_DURATION UNIFORM_DURATION=$UNIFORM_DURATION WINDOW=$WINDOW CONNECTIONS=$CONNECTIONS"
[[ $SKUS != 10000 ]] && repro+=" SKUS=$SKUS"
[[ $WARMUP != 2s ]] && repro+=" WARMUP=$WARMUP"
[[ $TTL != 0 ]] && repro+=" TTL=$TTL"
[[ -n $ORDERD_FLAGS ]] && repro+=" ORDERD_FLAGS='$ORDERD_FLAGS'"
repro+=" make bench-sustained"

mkdir -p "$(dirname "$OUT_MD")" "$(dirname "$PLOT")" "$(dirname "$CSV")"
"$BIN/orderbench" sustained -url "$SERVER_URL" -token "$BENCH_TOKEN" -label orderd \
	-phases "hot:$HOT_DURATION,uniform:$UNIFORM_DURATION" -skus "$SKUS" -window "$WINDOW" \
	-warmup "$WARMUP" -concurrency "$CONNECTIONS" -ttl "$TTL" -server-pid "$ORDERD_PID" \
	-csv "$CSV" -plot "$PLOT" -md "$OUT_MD" -command "$repro" -server-info "$info"

if ! kill -0 "$ORDERD_PID" 2>/dev/null; then
	echo "orderd exited during the run" >&2
	exit 1
fi
