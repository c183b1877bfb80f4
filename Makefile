# The commands a newcomer needs: make run, make test. See README.md.
GO        ?= go
PKGS      ?= ./...
BIN       := bin
DATA      ?= ./data
HTTP      ?= 127.0.0.1:8080
FUZZTIME  ?= 20s

# The benchmark tools (bench/) are a module of their own, so that the engine's
# go.mod carries none of their dependencies. BENCH_PKGS are its packages,
# relative to bench/; BENCH_PKGS= leaves it out of test, test-short and bench.
BENCH      := bench
BENCH_PKGS ?= ./...
# $(call in_bench,ARGS) runs go ARGS $(BENCH_PKGS) in the bench module, or
# nothing when BENCH_PKGS is empty.
in_bench = $(if $(BENCH_PKGS),$(GO) -C $(BENCH) $(1) $(BENCH_PKGS))

.PHONY: all build run run-cluster test test-short test-cluster test-ui lint bench bench-http bench-compare bench-sustained sim chaos fuzz proto tools clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...
	$(GO) -C $(BENCH) build -o $(CURDIR)/$(BIN)/ ./orderbench

run:
	$(GO) build -o $(BIN)/orderd ./cmd/orderd
	$(BIN)/orderd -data $(DATA) -http $(HTTP)

# Three nodes on 127.0.0.1 (NODES=n for another count), each with its data
# under $(DATA)/cluster; prints how to reach them. Ctrl-C stops them.
NODES ?= 3
run-cluster:
	$(GO) build -o $(BIN)/orderd ./cmd/orderd
	DATA=$(DATA) ORDERD=$(BIN)/orderd ./scripts/run-cluster.sh $(NODES)

# examples/kit is a module of its own too: tests written the way a user of
# the test kit writes them, from outside, against the exported API only.
EXAMPLES   := examples/kit

# What CI runs: every package of every module with the race detector.
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	# Several protoactor remotes in one process race on gRPC's global
	# logger (in the libraries, not ours), so under -race the routing
	# tests skip; they run here without it.
	$(GO) test -count=1 -timeout 5m -run 'Router|Remote' ./cluster/
	$(call in_bench,test -race -count=1 -timeout 20m)
	$(GO) -C $(EXAMPLES) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 $(PKGS)
	$(call in_bench,test -short -count=1)

# Every module. staticcheck is pinned in the engine's go.mod only: -modfile
# builds that pin while the packages it checks are the other module's.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) -C $(BENCH) vet ./...
	$(GO) tool staticcheck $(PKGS)
	$(GO) -C $(BENCH) tool -modfile=$(CURDIR)/go.mod staticcheck ./...
	./scripts/check-deps.sh
	$(GO) -C $(EXAMPLES) vet ./...
	$(GO) -C $(EXAMPLES) tool -modfile=$(CURDIR)/go.mod staticcheck ./...
	./scripts/check-tidy.sh . $(BENCH) $(EXAMPLES)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m $(PKGS)
	$(call in_bench,test -run '^$$' -bench . -benchmem -count=1 -timeout 30m)

# orderd against a bare fasthttp JSON handler (the ceiling): 10 000 uniform
# SKUs and one hot SKU, ratios measured in one run (DURATION=10s), under
# orderbench and under wrk (GENERATORS=orderbench leaves wrk out).
bench-http:
	./scripts/bench-http.sh

# orderd against the Redis and PostgreSQL reference designs and the ceiling,
# measured by orderbench (Go) and by wrk (C, bench/wrk/checkout.lua; uniform
# and hot) in the same rounds; rewrites docs/benchmarks.md and docs/bench/*.png
# (DURATION=10s ROUNDS=3; installs redis-server, postgresql and wrk with
# apt-get when missing; GENERATORS=orderbench leaves wrk out). Then p99 at half
# each server's maximum rate in an open loop, uniform and hot (HALF_RATE=0
# leaves it out; OPEN_CONCURRENCY=512 requests in flight at most).
bench-compare:
	./scripts/bench-compare.sh

# One fresh orderd under minutes of closed-loop load: HOT_DURATION (120s) on one
# hot SKU, then UNIFORM_DURATION (60s) over 10 000 SKUs, checkouts/s and server
# RSS every WINDOW (10s) with CONNECTIONS (64); replaces the "Sustained load"
# section of docs/benchmarks.md and writes docs/bench/sustained.{png,csv}.
bench-sustained:
	./scripts/bench-sustained.sh

# The order/SKU simulation (the real actors under a deterministic scheduler)
# with more and larger seeds than make test runs: SEEDS seeds of SIM_ORDERS
# checkouts each.
SEEDS      ?= 2000
SIM_ORDERS ?= 200
sim:
	$(GO) test -count=1 -timeout 60m ./actors/sim -run 'TestSimulation$$' -seeds $(SEEDS) -orders $(SIM_ORDERS) -v

# A chaos run of DURATION against a real orderd (SIGKILL, SIGSTOP/SIGCONT,
# clean restarts, one full volume when run as root), then everything read
# back: fails unless nothing acknowledged was lost, nothing oversold and
# stock conserved. Then HISTORIES Porcupine-checked histories of HISTORY_OPS
# operations each, SIGKILLed KILLS times each. make test runs short ones.
DURATION    ?= 3m
HISTORIES   ?= 20
HISTORY_OPS ?= 600
KILLS       ?= 3
chaos:
	$(GO) test -count=1 -timeout 0 -v ./chaos -run '^(TestChaos|TestLinearizableStock|TestLinearizableStockAcrossKill)$$' \
		-chaos.duration $(DURATION) -linear.histories $(HISTORIES) -linear.ops $(HISTORY_OPS) -linear.kills $(KILLS)

# The multi-process cluster tests (chaos/cluster_test.go): clusters of real
# orderd processes on 127.0.0.1 under the soak's workload through every
# gateway while nodes join, leave (SIGTERM), are SIGKILLed and restarted,
# and paused; everything read back after each step, the nodes' serve logs
# checked for two holders of one partition, and the checkout rate of three
# nodes against one; and the Porcupine check of stock on three nodes, one
# SIGKILLed and one paused (chaos/linear_cluster_test.go). The test binary
# builds orderd once, without -race.
test-cluster:
	$(GO) test -count=1 -timeout 10m -v ./chaos -run '^(TestCluster.*|TestLinearizableStockOnCluster)$$' -skip '^TestClusterSmoke$$' -cluster

# The dashboard in a browser (gateway/ui/browser_test.go): a three-node
# cluster under a small sale, /ui loaded in headless Chromium (Debian's
# chromium, installed with apt-get when missing; the test skips, saying why,
# where it cannot be), three members and 64 partition cells shown, no
# JavaScript error; the screenshot goes to $(UI_OUT)/dashboard.png.
UI_OUT ?= $(BIN)/test-ui
test-ui:
	@CHROMIUM=$$(./scripts/install-chromium.sh); \
	$(GO) test -count=1 -timeout 5m -v ./gateway/ui -run '^TestDashboardInBrowser$$' -ui \
		-ui.out $(abspath $(UI_OUT)) $${CHROMIUM:+-ui.chromium $$CHROMIUM}

# Each fuzz target runs for FUZZTIME.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Regenerates the committed protobuf code in actors/pb and cluster/pb.
proto: tools
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go \
		--go_out=. --go_opt=module=github.com/orderengine/orderengine \
		-I actors/pb actors/pb/*.proto
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go \
		--go_out=. --go_opt=module=github.com/orderengine/orderengine \
		-I cluster/pb cluster/pb/*.proto

tools:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go

clean:
	rm -rf $(BIN)
