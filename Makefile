# halb — the targets a developer and CI use. `make test` is the test command
# of the README and of .ci/run; `make demo` shows the product working.

SHELL   := /bin/bash
GO      ?= go
BIN     := bin
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Packages whose tests need root and network namespaces (they skip with the
# reason when not root); everything else runs with -race.
ROOT_PKGS := ./netlab/... ./cmd/netlab
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v -e '^halb/netlab' -e '^halb/cmd/netlab$$')
# -race needs cgo and a C compiler; scripts/deps.sh installs gcc as root.
RACE      ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)
FUZZTIME  ?= 15s

.PHONY: all build test deps lint demo netlab bench profile image image-test image-run fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps:
	@scripts/deps.sh

lint:
	@out=$$(gofmt -l appliance cmd internal netlab tui scripts 2>/dev/null); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: deps lint build
	$(GO) test $(RACE) -count=1 $(UNIT_PKGS)
	$(GO) test -count=1 -p 1 -parallel 4 -timeout 20m $(ROOT_PKGS)

# As root: the classic two-node topology in network namespaces under client
# load, with keys for faults; DEMO_FLAVOR=reference runs keepalived + HAProxy
# on the nodes (only that flavor's packages are installed). Otherwise: the
# daemon and CLI demo on loopback.
DEMO_FLAVOR ?= halb
demo: build
	@if [ "$$(id -u)" -eq 0 ]; then scripts/deps.sh demo-$(DEMO_FLAVOR) && $(BIN)/netlab demo -flavor $(DEMO_FLAVOR); \
	  else echo "(not root: the network-lab demo needs root; showing the daemon demo)"; scripts/demo.sh; fi

fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The failover scenarios (root): out/netlab/report.md and report.json.
netlab: deps build
	@status=0; $(GO) test -count=1 -p 1 -parallel 4 -v -timeout 20m $(ROOT_PKGS) || status=$$?; \
	  if [ -f out/netlab/report.md ]; then echo; cat out/netlab/report.md; fi; exit $$status

# wrk against a backend directly and through the proxies, in one lab run (root):
# 5 rounds of 5 s per target, the targets taking turns; medians and spreads;
# then the conn, size, ct (conntrack of bgp.drain_to), slow, tls (https) and scale rows, 3 rounds of 3 s (BENCH_ROWS=tls,scale
# runs only those; see netlab bench -h). Then the CPU share of 1000 and
# 10 000 tcp and 1000 http health checks a second beside HAProxy, 3 runs
# (out/bench/checks.txt),
# and the control plane beside HAProxy and keepalived: a reload of 10 000
# servers under load, 100 VRRP instances at 50 ms (out/bench/control.json).
BENCH_ROWS ?= all
bench: deps build
	$(BIN)/netlab bench -rows $(BENCH_ROWS) -out out/bench
	set -o pipefail; $(GO) test -run '^$$' -bench Checks1000 -benchtime 1x -count 3 ./appliance/health | tee out/bench/checks.txt
	$(BIN)/netlab benchctl -out out/bench
	NETLAB_DHCP_COMPARE=20 $(GO) test -count=1 -run TestDHCPLabLinkUpToAddress -v ./appliance/netcfg | grep -E '^(=== RUN|---|ok|FAIL)|link up|median'
	HALB_TIMESYNC_SOAK=30s $(GO) test -count=1 -run '^$$' -bench ChronyOffset -benchtime 1x ./appliance/timesync

# Where a request's CPU goes, halb against HAProxy in tcp and http mode
# (perf stat and perf record under wrk; docs/proxy-profile.md).
profile:
	@scripts/deps.sh profile
	GO=$(GO) scripts/profile.sh

image:
	@$(MAKE) --no-print-directory build
	@scripts/image.sh

image-test:
	@scripts/image-test.sh

# Boot the built image in QEMU on this terminal to try it (Ctrl-A X quits);
# CONFIG=file seeds another config than examples/single.yaml.
image-run: build
	@scripts/image-run.sh $(CONFIG)

# Lab namespaces of dead runs go first, while bin/netlab still exists.
clean:
	@if [ "$$(id -u)" -eq 0 ] && [ -x $(BIN)/netlab ]; then $(BIN)/netlab down || true; fi
	rm -rf $(BIN) out

# The reload and overload scenarios at full length (root): more changes,
# connections and time than in make netlab, and the long soak
# (NETLAB_SOAK_FOR, default 10m). The report: out/soak/report.md and .json.
.PHONY: soak
SOAK_TESTS := TestReloadUnderLoad|TestSlowClients|TestChurnAndGarbage|TestBigBodies|TestBackendFlapping|TestLongSoak
soak: deps build
	@status=0; NETLAB_SOAK=1 NETLAB_REPORT_DIR=$(CURDIR)/out/soak $(GO) test -count=1 -p 1 -v -timeout 90m \
	  -run '^($(SOAK_TESTS))$$' $(ROOT_PKGS) || status=$$?; \
	  if [ -f out/soak/report.md ]; then echo; cat out/soak/report.md; fi; exit $$status
