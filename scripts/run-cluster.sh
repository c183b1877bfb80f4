#!/usr/bin/env bash
# Starts a cluster of orderd nodes on 127.0.0.1 (three by default), each
# with its own data directory under $DATA/cluster, and prints how to reach
# them. Ctrl-C stops every node with SIGTERM (each hands its partitions to
# the others as it leaves, the last one keeps what is left).
#
#   scripts/run-cluster.sh [NODES]      NODES: 1..9, default 3
#
# Environment: ORDERD (the binary, default bin/orderd), DATA (default
# ./data), HTTP_BASE (first gateway port, default 8081), GOSSIP_BASE
# (default 7946), REMOTE_BASE (default 9081).
set -euo pipefail

nodes=${1:-3}
if ! [[ $nodes =~ ^[1-9]$ ]]; then
	echo "usage: $0 [NODES 1..9]" >&2
	exit 2
fi
orderd=${ORDERD:-bin/orderd}
data=${DATA:-./data}/cluster
http_base=${HTTP_BASE:-8081}
gossip_base=${GOSSIP_BASE:-7946}
remote_base=${REMOTE_BASE:-9081}
token=${ORDERD_ADMIN_TOKEN:-cluster-dev-token}

mkdir -p "$data"
pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping ${#pids[@]} nodes (SIGTERM) ..."
	# Newest first, so partitions flow back to the nodes that stay longest.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap stop INT TERM EXIT

seed=127.0.0.1:$gossip_base
for ((i = 1; i <= nodes; i++)); do
	name=node$i
	args=(-node "$name" -data "$data/$name" -admin-token "$token"
		-http "127.0.0.1:$((http_base + i - 1))"
		-gossip "127.0.0.1:$((gossip_base + i - 1))"
		-remote "127.0.0.1:$((remote_base + i - 1))")
	if ((i > 1)); then
		args+=(-seeds "$seed")
	fi
	"$orderd" "${args[@]}" 2>"$data/$name.log" &
	pids+=($!)
	# Let the first node found the cluster before the others join it.
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$((http_base + i - 1))/readyz" >/dev/null 2>&1 && break
		kill -0 "${pids[-1]}" 2>/dev/null || { echo "$name failed to start; see $data/$name.log" >&2; exit 1; }
		sleep 0.1
	done
done

echo "orderd cluster of $nodes nodes on 127.0.0.1 (admin token: $token)"
for ((i = 1; i <= nodes; i++)); do
	echo "  node$i  http://127.0.0.1:$((http_base + i - 1))   gossip 127.0.0.1:$((gossip_base + i - 1))   log $data/node$i.log"
done
cat <<MSG

Any node's gateway answers any request. Try:
  curl -s http://127.0.0.1:$http_base/v1/cluster
  curl -s -X POST -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
       -d '{"quantity":100}' http://127.0.0.1:$http_base/v1/skus/tea/restock
  curl -s -X POST -H 'Content-Type: application/json' \\
       -d '{"customer":"c1","items":[{"sku":"tea","quantity":1}]}' http://127.0.0.1:$((http_base + 1))/v1/orders
Ctrl-C stops the cluster.
MSG
wait -n "${pids[@]}" || true
echo "a node exited; see the logs in $data" >&2
