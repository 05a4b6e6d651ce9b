# Council Data Gateway. Two set-up commands on a fresh machine with Go and
# gcc: `make run` (the demo) and `make test` (every test).

GO       ?= go
TAGS     := duckdb_arrow
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DEMO_DIR := deploy/demo/data
SEED     ?= 42

.PHONY: build run demo-data test vet fmt clean bench

build: bin/gateway bin/councilgen

bin/gateway: FORCE
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $@ ./cmd/gateway

bin/councilgen: FORCE
	$(GO) build -tags $(TAGS) -o $@ ./cmd/councilgen

FORCE:

# The demo's data is generated (seeded, deterministic), never committed.
$(DEMO_DIR)/MANIFEST.json: | bin/councilgen
	./bin/councilgen demo --out $(DEMO_DIR) --seed $(SEED)

demo-data: bin/councilgen
	./bin/councilgen demo --out $(DEMO_DIR) --seed $(SEED)

run: build $(DEMO_DIR)/MANIFEST.json
	./bin/gateway serve --config deploy/demo/gateway.yaml

test:
	$(GO) vet -tags $(TAGS) ./...
	$(GO) test -tags $(TAGS) -count=1 -timeout 15m ./...

# The benchmark (bench/README.md): needs PostgreSQL on 127.0.0.1:5432 (postgres)
# and MariaDB on 127.0.0.1:3306 (root). BENCH_FULL=1 adds 32 councils x 250k rows.
bench:
	bash bench/bench.sh

fmt:
	gofmt -w cmd gateway adapters

clean:
	rm -rf bin $(DEMO_DIR)
