# mapflow's build and test entry points. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: build test check fuzz bench clean

build:
	$(GO) build -o bin/mapflow ./cmd/mapflow

# Everything: formatting, vet, and every test (it starts what the tests need).
test:
	scripts/test

# Fast checks only: formatting and vet.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# The parser, then whole job files through params, func and combiner under an 8 GB cap.
fuzz:
	$(GO) test ./lang -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-2m}
	prlimit --as=8000000000 $(GO) test ./lang -run '^$$' -fuzz FuzzJob -fuzztime $${FUZZTIME:-2m}

# mapflow beside its peers, one table (README, Performance); BENCH_SHORT=1 make bench for a
# quick check that every benchmark runs.
bench:
	bench/run

clean:
	rm -rf bin
