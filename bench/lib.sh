# Shared helpers for scripts/bench-http.sh and scripts/bench-compare.sh: build
# the binaries, start each server on a free 127.0.0.1 port with its data in a
# temporary directory, wait until it answers, run orderbench (and wrk through
# `orderbench wrk`), stop everything.
# Sourced, not run. Every wait is bounded; the EXIT trap stops every process
# started here and removes the temporary directory.

BENCH_READY_TIMEOUT_S=${BENCH_READY_TIMEOUT_S:-60}
BENCH_STOP_TIMEOUT_S=${BENCH_STOP_TIMEOUT_S:-30}
BENCH_TOKEN=bench-admin-token

bench_init() {
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	cd "$ROOT"
	BENCH_TMP=$(mktemp -d /tmp/orderbench.XXXXXX)
	chmod 755 "$BENCH_TMP"
	BENCH_PIDS=()
	PG_RUN=()
	PG_DIR=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	BIN="$BENCH_TMP/bin"
	mkdir -p "$BIN"
	bench_build orderbench
	bench_build ceiling
}

# bench_build NAME builds the command bench/NAME into $BIN. bench/ is a module
# of its own (bench/go.mod), so the build runs there.
bench_build() { go -C "$ROOT/bench" build -o "$BIN/$1" "./$1"; }

# bench_cleanup stops what is still running (newest first) and removes the temp dir.
bench_cleanup() {
	local i
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		bench_stop_pid "${BENCH_PIDS[i]}"
	done
	BENCH_PIDS=()
	if [[ -n "${PG_DIR:-}" && -f "$PG_DIR/postmaster.pid" ]]; then bench_stop_pg; fi
	rm -rf "$BENCH_TMP"
}

# bench_stop_pid sends SIGTERM, waits up to BENCH_STOP_TIMEOUT_S, then SIGKILL.
bench_stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < BENCH_STOP_TIMEOUT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	echo "pid $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo '?')) still running ${BENCH_STOP_TIMEOUT_S}s after SIGTERM; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# bench_stop_all stops every process started so far.
bench_stop_all() {
	local i
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		bench_stop_pid "${BENCH_PIDS[i]}"
	done
	BENCH_PIDS=()
	if [[ -n "${PG_DIR:-}" ]]; then bench_stop_pg; fi
}

bench_free_port() { "$BIN/orderbench" freeport; }

# bench_wait_http URL waits until URL answers 200.
bench_wait_http() {
	local url=$1 i
	for ((i = 0; i < BENCH_READY_TIMEOUT_S * 10; i++)); do
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "$url did not answer 200 within ${BENCH_READY_TIMEOUT_S}s" >&2
	return 1
}

# bench_start NAME CMD... runs CMD in the background with its log in the temp dir.
bench_start() {
	local name=$1
	shift
	"$@" >"$BENCH_TMP/$name.log" 2>&1 &
	BENCH_PIDS+=($!)
}

bench_need_root_for() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "$1 is missing and installing it needs root: apt-get install -y $1" >&2
		return 1
	fi
}

bench_ensure_redis() {
	command -v redis-server >/dev/null && return 0
	bench_need_root_for redis-server
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

# bench_ensure_wrk installs wrk, the C load generator `orderbench wrk` drives
# with bench/wrk/checkout.lua (GENERATORS=orderbench leaves it out).
bench_ensure_wrk() {
	command -v wrk >/dev/null && return 0
	bench_need_root_for wrk || {
		echo "(or run without it: GENERATORS=orderbench)" >&2
		return 1
	}
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

bench_ensure_pg() {
	if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
		bench_need_root_for postgresql
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	fi
	PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
}

# --- servers: each sets SERVER_URL -----------------------------------------

start_ceiling() {
	local port
	port=$(bench_free_port)
	bench_start ceiling "$BIN/ceiling" -http "127.0.0.1:$port"
	SERVER_URL="http://127.0.0.1:$port"
	bench_wait_http "$SERVER_URL/healthz"
}

# build_orderd builds our daemon; it fails (and callers skip it) while cmd/orderd does not build.
build_orderd() {
	go build -o "$BIN/orderd" ./cmd/orderd >"$BENCH_TMP/orderd-build.log" 2>&1
}

start_orderd() {
	local port data
	port=$(bench_free_port)
	data=$(mktemp -d "$BENCH_TMP/orderd-data.XXXXXX")
	bench_start orderd "$BIN/orderd" -data "$data" -http "127.0.0.1:$port" \
		-admin-token "$BENCH_TOKEN" -log-level warn
	SERVER_URL="http://127.0.0.1:$port"
	bench_wait_http "$SERVER_URL/readyz"
}

# start_redis FSYNC (everysec or always) then the reference server on it.
start_refredis() {
	local fsync=$1 rport port dir
	bench_ensure_redis
	[[ -x "$BIN/refredis" ]] || bench_build refredis
	rport=$(bench_free_port)
	dir=$(mktemp -d "$BENCH_TMP/redis.XXXXXX")
	bench_start "redis-$fsync" redis-server --bind 127.0.0.1 --port "$rport" --save '' \
		--appendonly yes --appendfsync "$fsync" --dir "$dir" --daemonize no --protected-mode yes
	local i
	for ((i = 0; i < BENCH_READY_TIMEOUT_S * 10; i++)); do
		redis-cli -p "$rport" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	port=$(bench_free_port)
	bench_start "refredis-$fsync" "$BIN/refredis" -http "127.0.0.1:$port" -admin-token "$BENCH_TOKEN" \
		-redis "127.0.0.1:$rport" -orders-file "$dir/orders.jsonl"
	SERVER_URL="http://127.0.0.1:$port"
	bench_wait_http "$SERVER_URL/readyz"
}

# start_refpg starts PostgreSQL (initdb into a temp dir, as the postgres user
# when we are root) with durable commits, then the reference server on it.
start_refpg() {
	local port run
	bench_ensure_pg
	[[ -x "$BIN/refpg" ]] || bench_build refpg
	PG_PORT=$(bench_free_port)
	PG_DIR=$(mktemp -d "$BENCH_TMP/pg.XXXXXX")
	run=()
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres "$PG_DIR"
		run=(runuser -u postgres --)
	fi
	"${run[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$BENCH_TMP/initdb.log" 2>&1
	"${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t "$BENCH_READY_TIMEOUT_S" start \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c synchronous_commit=on -c fsync=on -c max_connections=100 -c shared_buffers=256MB" >/dev/null
	PG_RUN=("${run[@]}")
	port=$(bench_free_port)
	bench_start refpg "$BIN/refpg" -http "127.0.0.1:$port" -admin-token "$BENCH_TOKEN" \
		-pg "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
	SERVER_URL="http://127.0.0.1:$port"
	bench_wait_http "$SERVER_URL/readyz"
}

bench_stop_pg() {
	"${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
	PG_DIR=
}

# start_server LABEL: the labels the report knows.
start_server() {
	case $1 in
	ceiling) start_ceiling ;;
	orderd) start_orderd ;;
	redis-everysec) start_refredis everysec ;;
	redis-always) start_refredis always ;;
	postgres) start_refpg ;;
	*) echo "unknown server $1" >&2; return 1 ;;
	esac
}

# bench_machine prints the machine section of the report.
bench_machine() {
	echo "## Machine"
	echo
	echo '```'
	echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') × $(nproc)"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel: $(uname -sr)"
	echo "disk:   $(df -T "$BENCH_TMP" | awk 'NR == 2 {print $2 " on " $1}') (temp dirs under $(dirname "$BENCH_TMP"))"
	if [[ -n "${PG_BIN:-}" ]]; then
		# The cost of durability is the cost of an fsync on this disk.
		echo "fsync:  $("$PG_BIN/pg_test_fsync" -s 1 -f "$BENCH_TMP/fsync.test" 2>/dev/null |
			awk '/^ +fdatasync +[0-9]/ && !done {print $(NF-3), $(NF-2), "(" $(NF-1), $NF ")", "8 kB fdatasync, pg_test_fsync"; done=1}')"
	fi
	echo "go:     $(go version | cut -d' ' -f3-)"
	command -v redis-server >/dev/null && echo "redis:  $(redis-server --version | cut -d' ' -f3)"
	# wrk --version prints its usage after the version and exits 1.
	command -v wrk >/dev/null && echo "wrk:    $( (wrk --version 2>&1 || true) | head -1 | cut -d' ' -f2)"
	[[ -n "${PG_BIN:-}" ]] && echo "postgres: $("$PG_BIN/postgres" --version | cut -d' ' -f3)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (working tree may differ)"
	echo '```'
}
