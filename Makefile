# firedrill — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/firedrill
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Where the harness caches the components it installs or builds (outside the repository).
export FIREDRILL_CACHE_DIR ?= $(HOME)/.cache/firedrill

.PHONY: all build demo test test-unit test-integration e2e setup bench vet clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/firedrill

## demo: build firedrill and run the whole pipeline on a throwaway local PostgreSQL
## (ENGINE=redis or ENGINE=mariadb: on a throwaway Redis or MariaDB instead).
demo: build
	./$(BIN) demo $(if $(ENGINE),--engine $(ENGINE))

## setup: install/build/cache every real component the integration tests use (idempotent).
setup:
	bash integration/setup/setup.sh

## test: set up the real components, then run unit and integration tests. The output is plain
## go test's (ok/FAIL lines, failing tests in full), then the real components the tests used, the
## skipped tests with their reasons, and "tests: N passed, N failed, N skipped".
## integration/ is its own Go module (its test-only dependencies stay out of go.mod): every target
## below runs in both modules. Both JSON streams go into one testsummary, so one final line counts
## every test, and the pipeline fails if either go test failed.
test: setup vet
	set -o pipefail; { rc=0; \
	  $(GO) test -json -count=1 -timeout 60m ./... || rc=$$?; \
	  $(GO) -C integration test -json -count=1 -timeout 60m ./... || rc=$$?; \
	  $(GO) -C integration test -tags e2e -json -count=1 -timeout 40m -run '^TestE2E' . || rc=$$?; \
	  exit $$rc; } | $(GO) -C integration run ./setup/testsummary

## test-unit: unit tests only (integration tests skip themselves under -short).
test-unit:
	$(GO) test -short -count=1 ./...
	$(GO) -C integration test -short -count=1 ./...

## test-integration: integration tests only (RUN=regexp to pick tests).
test-integration: setup
	$(GO) -C integration test -count=1 -timeout 60m -run '$(or $(RUN),.)' ./...

## e2e: the whole product on a real single-node cluster (kubelet, containerd, the CSI snapshot
## machinery, the test CSI driver, the Helm chart): root, about 5 minutes warm. RUN=regexp picks
## scenarios (e.g. RUN=TestE2E/1-). make test runs these scenarios too.
e2e: setup
	$(GO) -C integration test -tags e2e -count=1 -timeout 40m -v -run '$(or $(RUN),^TestE2E)' .

## bench: benchmarks (the drill and amcheck benchmarks build a >=1 GB pgbench dataset: minutes).
## BENCH=regexp picks benchmarks; SCALE=n the pgbench scale of the datasets (default 70; 350 is
## about 5 GB). BenchmarkDrill prints firedrill side by side with the same work done by hand.
bench:
	$(GO) test -run '^$$' -bench '$(or $(BENCH),.)' -benchtime 1x -timeout 60m ./...
	$(if $(SCALE),FIREDRILL_BENCH_SCALE=$(SCALE)) $(GO) -C integration test -run '^$$' -bench '$(or $(BENCH),.)' -benchtime 1x -timeout 120m ./...

vet:
	$(GO) vet ./...
	$(GO) -C integration vet ./...
	$(GO) -C integration vet -tags e2e .

clean:
	rm -rf bin
