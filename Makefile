# weft: one binary for the mesh. `make demo` runs the demo mesh, `make test` the tests.
GO ?= go
PKGS := ./...

.PHONY: all build test vet fmt-check unit e2e bench bench-mtls bench-telemetry chaos demo clean

all: build

build:
	$(GO) build -o bin/weft ./cmd/weft

## test: everything CI runs: vet, gofmt, race-enabled unit and end-to-end tests.
test: vet fmt-check unit

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -timeout 20m $(PKGS)

## bench: proxy throughput/latency against direct, HAProxy and nginx (see bench/README.md).
bench: build
	./bench/run.sh

## bench-mtls: two weft hops with mTLS vs plaintext vs HAProxy (TLS), and TLS handshakes per CPU-second; writes bench/RESULTS-mtls.md.
bench-mtls: build
	./bench/mtls.sh

## bench-telemetry: two weft hops with telemetry off vs every request traced and logged to a running control plane (OTLP), and the cost ratio; writes bench/RESULTS-telemetry.md.
bench-telemetry: build
	./bench/telemetry.sh

## chaos: the resilience scenarios (kill, flaky, slow, breaker) vs HAProxy; writes bench/RESULTS-chaos.md.
chaos: build
	./bench/chaos.sh

demo:
	$(GO) run ./cmd/weft up -f examples/shop

clean:
	rm -rf bin .weft bench/out
