# Council Data Gateway. Two set-up commands on a fresh machine with Go and
# gcc: `make run` (the demo) and `make test` (every test).

GO       ?= go
TAGS     := duckdb_arrow
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DEMO_DIR := deploy/demo/data
SECRETS  := $(DEMO_DIR)/secrets
SEED     ?= 42

.PHONY: build run demo-data test vet fmt clean bench bench-overload verify-demo-audit

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

# The demo's secrets are random, written beside its data at the first run
# (only the files missing; never rewritten) and never committed.
run: build $(DEMO_DIR)/MANIFEST.json
	./bin/gateway secrets init --out $(SECRETS)
	./bin/gateway serve --config deploy/demo/gateway.yaml

# Check the demo's audit log: every record's HMAC and the signed head.
verify-demo-audit: bin/gateway
	./bin/gateway audit verify --public-key $(SECRETS)/audit_signing_key.pub.pem \
		--key $(SECRETS)/audit_hmac_key deploy/demo/audit/audit.jsonl

test:
	$(GO) vet -tags $(TAGS) ./...
	$(GO) test -tags $(TAGS) -count=1 -timeout 15m ./...

# The benchmark (bench/README.md): needs PostgreSQL on 127.0.0.1:5432 (postgres)
# and MariaDB on 127.0.0.1:3306 (root). BENCH_FULL=1 adds 32 councils x 250k rows.
bench:
	bash bench/bench.sh

# Issue 9's overload measurement over the demo: 20, 200 and 500 clients with a
# 5 s timeout; no database needed (bench/README.md).
bench-overload:
	bash bench/overload.sh

fmt:
	gofmt -w cmd gateway adapters

# The demo's audit log goes with its keys: a new key needs a new log.
clean:
	rm -rf bin $(DEMO_DIR) deploy/demo/audit
