# The commands a newcomer needs: make run, make test. See README.md.
GO        ?= go
PKGS      ?= ./...
BIN       := bin
DATA      ?= ./data
HTTP      ?= 127.0.0.1:8080
FUZZTIME  ?= 20s

.PHONY: all build run test test-short lint bench fuzz proto tools clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	@if [ -x $(BIN)/orderd ]; then $(BIN)/orderd -data $(DATA) -http $(HTTP); \
	else echo "orderd is not built yet: cmd/orderd arrives with the gateway" >&2; exit 1; fi

# What CI runs: every package with the race detector.
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	./scripts/check-deps.sh
	./scripts/check-tidy.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m $(PKGS)

# Each fuzz target runs for FUZZTIME.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Regenerates the committed protobuf code in actors/pb.
proto: tools
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go \
		--go_out=. --go_opt=module=github.com/orderengine/orderengine \
		-I actors/pb actors/pb/*.proto

tools:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go

clean:
	rm -rf $(BIN)
