# brisk — run `make help` for the targets.
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin

.PHONY: help run build test test-short check proto bench bench-db pgo tools

help:
	@echo "make run     run brisk up (embedded store, payment service, API on :8080)"
	@echo "make test    run every test (needs PostgreSQL and Redis on 127.0.0.1, see README)"
	@echo "make check   gofmt, go vet, staticcheck, go test -race -short"
	@echo "make proto   regenerate the payment service's protobuf code"
	@echo "make bench   measure brisk against the machine's limits (bench/)"
	@echo "make pgo     re-profile brisk for profile-guided optimization (cmd/brisk/default.pgo)"

run:
	$(GO) run ./cmd/brisk up

build:
	$(GO) build -o bin/brisk ./cmd/brisk

test:
	$(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short ./...

tools:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

check: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	$(GO) test -race -short ./...

proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	$(GO) generate ./api/...

bench-db:
	bash bench/db.sh

bench:
	bash bench/run.sh

pgo:
	bash bench/pgo.sh
