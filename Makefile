# gripd developer tasks. `make test` is what CI runs (see .ci/run).

GO ?= go
FUZZTIME ?= 10s

.PHONY: all build test test-deps demo bench fuzz clean

all: build

build:
	$(GO) build -o bin/gripd ./cmd/gripd

# Everything the tests need is installed first by scripts/test-deps.sh
# (gcc for -race, the npm packages of integration/, Debian's chromium), so
# `make test` is the only command to run on a fresh clone.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

test-deps:
	./scripts/test-deps.sh

demo: build
	./examples/demo.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./grip/ ./handoff/ ./proxy/

fuzz:
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseHeaders$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseInstruct$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParsePublish$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseWSEvents$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseWSControl$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseLinks$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzParseSetMeta$$' -fuzztime $(FUZZTIME)
	$(GO) test ./grip -run '^$$' -fuzz '^FuzzFilterMessage$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy -run '^$$' -fuzz '^FuzzParseRouteLine$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy -run '^$$' -fuzz '^FuzzNormalizePath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./proxy -run '^$$' -fuzz '^FuzzNextLink$$' -fuzztime $(FUZZTIME)
	$(GO) test ./publish -run '^$$' -fuzz '^FuzzChannelToken$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin/
