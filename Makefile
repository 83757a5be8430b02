# gripd developer tasks. `make test` is what CI runs (see .ci/run).

GO ?= go
FUZZTIME ?= 10s

.PHONY: all build test demo bench fuzz clean

all: build

build:
	$(GO) build -o bin/gripd ./cmd/gripd

# The integration tests need `npm ci` in integration/ first (or GRIPD_SKIP_NODE=1).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

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
	$(GO) test ./publish -run '^$$' -fuzz '^FuzzChannelToken$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin/
