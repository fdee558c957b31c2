# entra-auth: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
MODULE  := dist/entra-auth.wasm
LISTEN  ?= 127.0.0.1:8080
APP     ?= 127.0.0.1:3000
IDP     ?= 127.0.0.1:9001
USERS   ?= 127.0.0.1:9002

.PHONY: build run run-django test check bench bench-v8 bench-compare size fuzz clean help

## build: compile the filter to dist/entra-auth.wasm, the module Envoy and Istio load
## (the standard Go toolchain, then cmd/wasmstub, so that it loads in Envoy 1.33: an
## import of a file function nothing calls)
build:
	@mkdir -p dist
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $(MODULE) .
	$(GO) run ./cmd/wasmstub -imports testdata/envoy-host-abi.txt $(MODULE)
	@ls -l $(MODULE) | awk '{print "built $(MODULE) (" $$5 " bytes)"}'

## run: start the filter locally, in front of a demo app, with a mock Entra ID
## (the wazero runner; the reference user-sync service keeps the users)
run: build
	@mkdir -p bin
	@echo "run: building the runner, the mock Entra ID, the demo app and the user-sync service"
	$(GO) build -o bin/wasmhost ./e2e/cmd/wasmhost
	$(GO) build -o bin/demoapp ./e2e/cmd/demoapp
	$(GO) build -o bin/mockentra ./e2e/cmd/mockentra
	$(GO) build -o bin/usersync ./e2e/cmd/usersync
	LISTEN=$(LISTEN) APP=$(APP) IDP=$(IDP) USERS=$(USERS) CONFIG=$(CONFIG) ./scripts/run-local.sh

## run-django: what make run starts, with the reference Django project as the app
## (examples/django: the application and its user-sync endpoint, the filter signing what
## it sends it); needs Debian's python3-django
run-django: build
	@mkdir -p bin
	$(GO) build -o bin/wasmhost ./e2e/cmd/wasmhost
	$(GO) build -o bin/mockentra ./e2e/cmd/mockentra
	LISTEN=$(LISTEN) APP=$(APP) IDP=$(IDP) APP_KIND=django CONFIG=$(CONFIG) ./scripts/run-local.sh

## test: vet and every test: unit, host and end-to-end, in wazero and in V8
## Two lines side by side. One: every test (unit, host, end-to-end, and the long ones:
## memory over 110,000 requests, the soak as Envoy 1.33 answers), then the whole
## end-to-end suite again with the module in V8's default tiering (Node's V8,
## e2e/v8/runner.js). Two: the race detector where concurrency lives (the Envoy-like
## host, shared state, the user-sync service, the binding) and the end-to-end tests of
## several workers against a runner built with -race; then sign-in, refresh, bearer and
## user sync in V8 with Envoy's flags (TurboFan only, 2 s per start).
V8_EXACT := SignIn|Refresh|Bearer|UserSync
MODPATH := github.com/entra-auth/entra-auth
RACE_PKGS := ./e2e/envoyhost ./e2e/usersync ./internal/sharedstate ./sdkbinding
RACE_E2E := AcrossWorkers|ConcurrentRequests|MetadataIsFetchedOnce|UnknownKidFlood|Canary|Runner|Panic
## Tests skipped for a tool the machine lacks are listed at the end (internal/testskip).
SKIPLOG := $(CURDIR)/dist/skipped.txt
test: build
	@rm -f $(SKIPLOG); date +%s > dist/test-started
	$(GO) vet ./...
	@command -v node >/dev/null || echo "SKIPPED: the end-to-end tests in V8: no Node.js (apt-get install nodejs; .ci/run does)" | tee -a $(SKIPLOG)
	@echo "== two lines of tests side by side (both cores):"
	@echo "==   every test, then the end-to-end suite in V8 with its default tiering"
	@echo "==   the race detector ($(RACE_PKGS), the end-to-end tests of several workers), then $(V8_EXACT) in V8 with Envoy's flags"
	@{ ENTRA_AUTH_SKIP_LOG=$(SKIPLOG) $(GO) test -count=1 $$($(GO) list ./... | grep -v -x -F $(foreach p,$(RACE_PKGS),-e $(MODPATH)/$(p:./%=%))) && \
	  if command -v node >/dev/null; then ENTRA_AUTH_SKIP_LOG=$(SKIPLOG) $(GO) test -short -count=1 ./e2e -args -engine=v8-tiered; fi; } & all=$$!; \
	{ $(GO) test -race -short -count=1 $(RACE_PKGS) && $(GO) test -race -short -count=1 -run '$(RACE_E2E)' ./e2e && \
	  if command -v node >/dev/null; then $(GO) test -short -count=1 -run '$(V8_EXACT)' ./e2e -args -engine=v8; fi; }; other=$$?; \
	wait $$all; all=$$?; \
	if [ -s $(SKIPLOG) ]; then echo "== skipped for want of a tool:"; sort -u $(SKIPLOG); fi; \
	took=$$(( $$(date +%s) - $$(cat dist/test-started) )); \
	[ $$all -eq 0 ] && [ $$other -eq 0 ] && echo "== make test passed in $$((took / 60)) min $$((took % 60)) s" || { echo "== make test FAILED (see above)"; exit 1; }

## check: what CI would refuse: formatting, vet, a tidy go.mod, a clean tree after the build
check: build
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet . ./filter/... ./config/... ./flow/... ./jwks/... ./session/... ./upstreamsig/... ./internal/sharedstate/... ./internal/expcache/... ./sdkbinding/...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

## bench: the Go benchmarks: native, Wasm in wazero, the module in the host and in V8
## Not part of `make test`: the per-request paths natively (flow,
## jwks, session), the same code compiled to Wasm and run by wazero's compiler, and the
## built module in the Envoy-like host (e2e: in-VM time per request, compile with and
## without wazero's cache, VM start, header marshalling, linear memory after 1k and 100k
## requests). Then, with Node, the module in V8 with Envoy's flags (TurboFan compile,
## instantiate and start, in-module median and p99 per path, linear memory), run after
## run beside the module of V8_BASELINE (built once into .cache by
## scripts/build-baseline.sh), so that the ratios are measured side by side.
## Raw results go to dist/bench-*.txt, then benchstat's medians.
BENCHCOUNT ?= 6
V8_BASELINE ?= 59f32dc
V8_BASELINE_MODULE := .cache/module-$(V8_BASELINE).wasm
BENCHSTAT  := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
WASMEXEC   := $(shell $(GO) env GOROOT)/lib/wasm
bench: build
	@mkdir -p bin dist
	$(GO) build -o bin/wazero github.com/tetratelabs/wazero/cmd/wazero
	$(GO) test -run '^$$' -bench . -cpu 1 -count $(BENCHCOUNT) ./flow ./jwks ./session ./upstreamsig | tee dist/bench-native.txt
	PATH="$(CURDIR)/bin:$(WASMEXEC):$$PATH" GOWASIRUNTIME=wazero GOOS=wasip1 GOARCH=wasm \
	  $(GO) test -run '^$$' -bench . -count $(BENCHCOUNT) ./flow ./jwks ./session ./upstreamsig | tee dist/bench-wasm.txt
	$(GO) test -run '^$$' -bench . -skip 'LinearMemory|V8' -count $(BENCHCOUNT) ./e2e/... | tee dist/bench-vm.txt
	$(GO) test -run '^$$' -bench '^BenchmarkLinearMemory' -count 1 ./e2e | tee dist/bench-memory.txt
	@ls -l $(MODULE) | awk '{print "module size: " $$5 " bytes"}' | tee dist/bench-module.txt
	@echo "== native vs Wasm (wazero), medians of $(BENCHCOUNT)"
	$(GO) run $(BENCHSTAT) -ignore goos,goarch,cpu native=dist/bench-native.txt wasm=dist/bench-wasm.txt
	@echo "== in the module (e2e), medians of $(BENCHCOUNT)"
	$(GO) run $(BENCHSTAT) dist/bench-vm.txt
	@$(MAKE) --no-print-directory bench-v8

## bench-v8: the module in V8 with Envoy's flags, beside V8_BASELINE's (part of bench)
## Run after run beside the module of V8_BASELINE: TurboFan compile, instantiate and start, time inside the
## module per request path, linear memory after 1k and 100k requests; and the floor (the
## SDK and Go's runtime alone, e2e/testdata/floor)
bench-v8: build
	@mkdir -p dist
	@if ! command -v node >/dev/null; then echo "SKIPPED: the V8 benchmarks: no Node.js (apt-get install nodejs)"; exit 0; fi; \
	./scripts/build-baseline.sh $(V8_BASELINE) $(V8_BASELINE_MODULE) && \
	rm -f dist/bench-v8-head.txt dist/bench-v8-base.txt && \
	for i in $$(seq $(BENCHCOUNT)); do \
	  $(GO) test -run '^$$' -bench 'V8Compile|V8Start|V8Request|V8Floor' -count 1 ./e2e >>dist/bench-v8-head.txt && \
	  $(GO) test -run '^$$' -bench 'V8Compile|V8Start|V8Request' -count 1 ./e2e -args -v8-module=$(CURDIR)/$(V8_BASELINE_MODULE) >>dist/bench-v8-base.txt || exit 1; \
	done && \
	$(GO) test -run '^$$' -bench 'V8LinearMemory' -count 1 ./e2e | tee dist/bench-v8-memory.txt && \
	$(GO) test -run '^$$' -bench 'V8LinearMemory' -count 1 ./e2e -args -v8-module=$(CURDIR)/$(V8_BASELINE_MODULE) | tee -a dist/bench-v8-memory.txt && \
	echo "== in V8 with Envoy's flags: the module of $(V8_BASELINE) against this one, medians of $(BENCHCOUNT) run side by side" && \
	$(GO) run $(BENCHSTAT) $(V8_BASELINE)=dist/bench-v8-base.txt this=dist/bench-v8-head.txt

## bench-compare: entra-auth against oauth2-proxy and the upstream alone, on loopback
## The module in the wazero runner against oauth2-proxy (built from
## the module proxy into .cache, once) and the upstream alone, on loopback, pinned to
## CPUs; see BENCHMARKS.md. Not part of `make test`. COMPARE_FLAGS adds flags, e.g.
## COMPARE_FLAGS="-rounds 5 -chart docs/bench-compare.png".
COMPARE_FLAGS ?=
bench-compare: build
	@mkdir -p bin .cache
	$(GO) build -o bin/wasmhost ./e2e/cmd/wasmhost
	$(GO) build -o bin/benchcompare ./e2e/cmd/benchcompare
	./bin/benchcompare -wasm $(MODULE) -runner bin/wasmhost -cache .cache $(COMPARE_FLAGS)

## size: the built module's code by Go package, and its 20 largest functions
## From its name section: what V8's optimizing compiler, which Envoy uses for every function,
## compiles at every start and module update
size: build
	$(GO) run ./cmd/wasmsize -top 20 $(MODULE)

## fuzz: a short run of each fuzz target (FUZZTIME each), found in the test files
FUZZTIME ?= 30s
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	    echo "fuzz $$target in $$(dirname $$file)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$(dirname $$file)" || exit 1; \
	  done; \
	done

## clean: remove what the build and the local runs wrote (dist, bin)
clean:
	rm -rf dist bin

## help: list the targets and what each is for
help:
	@awk '/^## [a-z0-9-]+: / { name = $$2; sub(/:$$/, "", name); line = $$0; sub(/^## [a-z0-9-]+: /, "", line); printf "  %-14s %s\n", name, line }' $(firstword $(MAKEFILE_LIST))
