# Inter-NMI meter PKI: build, run and test the consortium on this machine.
#
#   make up            bring the whole system up locally (first run builds Fabric: minutes)
#   make status        every node and whether it is healthy
#   make down          stop every process the project started
#   make down CLEAN=1  ...and wipe crypto material, ledgers and logs
#   make test          every test: unit tests, end-to-end on a fresh test consortium, and again
#                      with each NMI on a host (network namespace) of its own

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
RUN       ?= .run
TEST_RUN  ?= .run-test
# The test consortium runs beside a `make up` one, every port shifted.
TEST_PORT_OFFSET ?= 10000

FABRIC_TOOLS := network/fabric
FABRIC_STAMP := $(BIN)/.fabric-$(shell sed -n 's/.*hyperledger\/fabric \(v[^ ]*\).*/\1/p' $(FABRIC_TOOLS)/go.mod)
FABRIC_CMDS  := peer orderer configtxgen osnadmin configtxlator

CONSORTIUM := $(BIN)/consortium -run $(RUN)

.PHONY: help
help:
	@sed -n 's/^#   //p' Makefile

## Binaries ------------------------------------------------------------------

# Fabric's binaries and sample configuration, from the pinned module version,
# built with our fixes of it (network/fabric/patches, applied to a copy).
$(FABRIC_STAMP): $(FABRIC_TOOLS)/go.mod $(FABRIC_TOOLS)/go.sum $(FABRIC_TOOLS)/patched $(wildcard $(FABRIC_TOOLS)/patches/*.patch)
	@echo "Building Hyperledger Fabric ($(FABRIC_CMDS)) from the Go module proxy; the first build takes several minutes"
	@mkdir -p $(BIN)
	@cd $(FABRIC_TOOLS) && $(GO) mod download -x 2>&1 | awk '/^# get .*zip$$/ {n++; if (n % 20 == 0) printf "  %d modules downloaded\n", n}'
	@cd $(FABRIC_TOOLS) && ./patched $(BIN)/.build-fabric
	@cd $(BIN)/.build-fabric && $(GO) build -v -o $(BIN)/ $(addprefix github.com/hyperledger/fabric/cmd/,$(FABRIC_CMDS)) 2>&1 \
		| awk '{n++; if (n % 100 == 0) printf "  %d packages compiled\n", n} /:[0-9]+:[0-9]+: / {print; bad=1} END {exit bad}'
	@rm -rf $(BIN)/sampleconfig
	@cp -R "$$(cd $(FABRIC_TOOLS) && $(GO) list -m -f '{{.Dir}}' github.com/hyperledger/fabric)/sampleconfig" $(BIN)/sampleconfig
	@chmod -R u+w $(BIN)/sampleconfig
	@rm -rf $(BIN)/.build-fabric
	@rm -f $(BIN)/.fabric-* && touch $@
	@echo "Fabric binaries ready in $(BIN)"

.PHONY: bin
bin: $(FABRIC_STAMP)
	@$(GO) build -o $(BIN)/ ./pki-chaincode ./network/cmd/consortium ./network/cmd/benchledger ./registry-api/cmd/registry-api ./registry-api/cmd/pki ./registry-api/cmd/metersim ./explorer/cmd/explorer ./fe-billing/cmd/febill

## The system ----------------------------------------------------------------

.PHONY: up
up: bin
	@$(CONSORTIUM) up

.PHONY: status
status:
	@$(CONSORTIUM) status

.PHONY: down
down:
	@if [ -x $(BIN)/consortium ]; then $(CONSORTIUM) down $(if $(CLEAN),-clean); fi

## Tests ---------------------------------------------------------------------

.PHONY: test
test: prerequisites lint unit e2e test-multihost

# What the tests need from Debian, checked before anything runs (.ci/run
# installs it on a fresh machine).
.PHONY: prerequisites
prerequisites:
	@missing=$$(.ci/missing); if [ -n "$$missing" ]; then \
		echo "make test needs these Debian packages: $$missing (Chromium runs the explorer's browser test, npm installs axe-core for it)"; \
		echo "  install them with: sudo apt-get install -y --no-install-recommends $$missing   (.ci/run does it)"; exit 1; fi

# Tools are tool directives of go.mod (staticcheck) and network/fabric/go.mod
# (Fabric), run with `go tool`: their versions are exact module versions and
# go.sum checks them like any dependency. check-pins first resolves every
# pinned version from an empty module cache, so a pin a new machine cannot
# fetch fails here, on a warm machine too. layers checks that imports follow
# the floor plan of docs/structure.md.
.PHONY: lint
lint:
	@.ci/check-pins
	@.ci/layers
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./network/e2e/...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags e2e ./network/e2e/...

.PHONY: unit
unit:
	$(GO) test -count=1 ./...

# axe-core, the accessibility audit the explorer's browser test runs inside
# Chromium, at the exact version and integrity of network/e2e/axe's
# package-lock.json.
AXE := network/e2e/axe/node_modules/axe-core/axe.min.js
$(AXE): network/e2e/axe/package.json network/e2e/axe/package-lock.json
	npm ci --prefix network/e2e/axe --no-audit --no-fund --loglevel=error
	@touch $@

# End-to-end: a fresh consortium for the whole run, shared by every e2e test,
# taken down (by PID) and wiped afterwards whatever the outcome. The browser
# test's screenshots are kept in test-artifacts/.
.PHONY: e2e
e2e: bin $(AXE)
	PKI_ARTIFACTS=$(CURDIR)/test-artifacts PKI_AXE=$(CURDIR)/$(AXE) $(BIN)/consortium -run $(TEST_RUN) -port-offset $(TEST_PORT_OFFSET) exec -- \
		$(GO) test -tags e2e -count=1 -p 1 -v -timeout 20m -skip 'TestFaultCampaign|TestLeaderCrashRecovery' ./network/e2e/...

# The same register-and-verify flow with every NMI on a host of its own: a
# network namespace per NMI at its address of network/topology-multihost.yaml
# (needs root and iproute2, as CI has), and there the short fault campaign,
# where every fault applies, the host cut off its link included, and the
# leader crashes timed. WAN=1 gives the links between the NMIs' hosts the
# round trips between their sites (network/latency.yaml; needs iptables).
MULTIHOST_RUN ?= .run-multihost
WAN ?=
LATENCY := $(if $(WAN),-latency network/latency.yaml)
.PHONY: test-multihost
test-multihost: bin
	$(BIN)/consortium -topology network/topology-multihost.yaml -run $(MULTIHOST_RUN) -netns $(LATENCY) exec -- \
		env PKI_ARTIFACTS=$(CURDIR)/test-artifacts $(GO) test -tags e2e -count=1 -p 1 -v -timeout 15m -run 'TestMeterLifecycle|TestKeyLevelPolicy|TestRegistryAPI|TestFaultCampaign|TestLeaderCrashRecovery' ./network/e2e/...

# The full fault campaign (minutes): its own consortium, an NMI per host,
# a heavier load and longer faults, then ten leader crashes idle and ten
# under load; prints the tables and writes them to test-artifacts/
# (fault-campaign-full, leader-crash-full). WAN=1 as for test-multihost.
CHAOS_RUN ?= .run-chaos
.PHONY: chaos
chaos: bin
	$(BIN)/consortium -topology network/topology-multihost.yaml -run $(CHAOS_RUN) -netns $(LATENCY) exec -- \
		env PKI_CAMPAIGN=full PKI_LEADER_RUNS=10 PKI_ARTIFACTS=$(CURDIR)/test-artifacts $(GO) test -tags e2e -count=1 -p 1 -v -timeout 60m -run 'TestFaultCampaign|TestLeaderCrashRecovery' ./network/e2e/...

# The ledger path under load on a fresh consortium of its own (ports +20000):
# concentrator batches, single deliveries (64 meters, 512 meters, at half the
# 64 meters' rate, at 40/s) through PTB's registry, with measurements per
# second, latency, block bytes and CPU-seconds per 1,000 measurements of every
# kind of process, the bytes on disk every store gained per measurement (each
# peer's blocks, block index, state and history, each orderer's blocks and
# write-ahead log, each registry's readings index and idempotency records, the
# explorer's index; per instance, for one NMI's machines and for the whole
# consortium) and the resident memory of every kind of process at the end;
# also in test-artifacts/bench-ledger.json. BENCH_SCENARIOS picks scenarios by
# name (comma-separated). WAN=1 runs it with an NMI per host and the round
# trips between their sites (test-artifacts/bench-ledger-wan.json).
BENCH_RUN ?= .run-bench
BENCH_NETWORK := $(if $(WAN),-topology network/topology-multihost.yaml -netns $(LATENCY),-port-offset 20000)
BENCH_SCENARIOS ?=
.PHONY: bench-ledger
bench-ledger: bin
	@mkdir -p test-artifacts
	$(BIN)/consortium -run $(BENCH_RUN) $(BENCH_NETWORK) exec -- $(BIN)/benchledger $(if $(BENCH_SCENARIOS),-scenarios '$(BENCH_SCENARIOS)') -json $(CURDIR)/test-artifacts/bench-ledger$(if $(WAN),-wan).json

# The same consortium over a long run: batches (fresh meters every 24,000
# measurements) until BENCH_LONG measurements are accepted, with the storage
# per measurement and the memory at each of BENCH_CHECKPOINTS (comma-separated;
# default a tenth of BENCH_LONG and BENCH_LONG), counted from the start (about
# 10 minutes per million at 2,000/s, more as the stores grow);
# then PTB's registry readings index and the explorer's index are deleted and
# rebuilt from block 0, timed until they hold every block. Printed at each
# checkpoint and kept in test-artifacts/bench-ledger-long.json (WAN=1 as above).
BENCH_LONG ?= 1000000
BENCH_CHECKPOINTS ?=
.PHONY: bench-ledger-long
bench-ledger-long: bin
	@mkdir -p test-artifacts
	$(BIN)/consortium -run $(BENCH_RUN) $(BENCH_NETWORK) exec -- $(BIN)/benchledger -long $(BENCH_LONG) $(if $(BENCH_CHECKPOINTS),-checkpoints $(BENCH_CHECKPOINTS)) -rebuild \
		-json $(CURDIR)/test-artifacts/bench-ledger-long$(if $(WAN),-wan).json

.PHONY: bench
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./pki-chaincode/...
