# wsactor: the verbs people use. `make help` lists them.

GO        ?= go
FUZZTIME  ?= 60s
SMOKETIME ?= 100000x
ARGS      ?=
# Modules of their own (so the runtime keeps its three dependencies):
# scripts/test.sh has the same list.
SUBMODULES := interop browser bench cmd/wsechod cmd/wschat broker/nats

.PHONY: help run chat build test fmt-check vet unit submodules fuzz-smoke fuzz bench bench-quick cover lint

help:
	@echo "make run          build and start the echo daemon (ARGS='-addr 127.0.0.1:9000' to change flags)"
	@echo "make chat         build and start the chat server on http://127.0.0.1:8081/ (ARGS='-addr 127.0.0.1:9001' to change flags)"
	@echo "make test         installs what the tests need, then gofmt, go vet, go test -race of every module, a smoke run of every fuzz target; ends with 'N passed, M failed, K skipped'"
	@echo "make fuzz         each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make bench        micro-benchmarks and wsactor side by side with the other Go libraries"
	@echo "make bench-quick  a subset of make bench in about a minute"
	@echo "make cover        test coverage of the runtime packages"

# wsechod and wschat are modules of their own (their -nats flags need the
# NATS client).
build:
	cd cmd/wsechod && $(GO) build -o ../../bin/wsechod .
	$(GO) build -o bin/wsload ./cmd/wsload
	cd cmd/wschat && $(GO) build -o ../../bin/wschat .

run: build
	./bin/wsechod $(ARGS)

chat:
	cd cmd/wschat && $(GO) build -o ../../bin/wschat .
	./bin/wschat $(ARGS)

# Everything, on a fresh machine too: scripts/test.sh installs what the
# tests need, runs every step even after one fails, and ends with the line
# "N passed, M failed, K skipped".
test:
	@GO=$(GO) SMOKETIME=$(SMOKETIME) scripts/test.sh

fmt-check:
	@out=$$(gofmt -l . | grep -v '^bench/results/' || true); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	@for m in $(SUBMODULES); do [ -f $$m/go.mod ] || continue; (cd $$m && $(GO) vet ./...) || exit 1; done

# The conformance suite runs in its own directory so that its summary line
# ("N passed, M failed") is printed.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /conformance$$)
	cd conformance && $(GO) test -race -count=1

submodules:
	@for m in $(SUBMODULES); do [ -f $$m/go.mod ] || continue; \
		echo "== $$m"; (cd $$m && $(GO) test -race -count=1 ./...) || exit 1; done

# Every Fuzz target of every package, briefly: its seeds and a fixed count
# of new inputs (a count, not a duration: see scripts/fuzz.sh).
fuzz-smoke:
	@GO=$(GO) scripts/fuzz.sh $(SMOKETIME)

fuzz:
	@GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

bench:
	cd bench && $(GO) run ./cmd/benchrun

# A quick run writes its results under bench/bin/quick (ignored by git), so
# that it leaves the tree clean; make bench updates bench/results.
bench-quick:
	cd bench && $(GO) run ./cmd/benchrun -quick -results bin/quick

cover:
	$(GO) test -coverprofile=cover.out ./codec/ ./actor/ ./session/
	$(GO) tool cover -func=cover.out | tail -1

lint: fmt-check vet
