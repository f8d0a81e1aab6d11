# decouple: build, demo and test entry points. Run `make help` for a list.

GO      ?= go
BIN     := $(CURDIR)/bin
LIBDIR  ?= /usr/lib/x86_64-linux-gnu
# Bounded fuzzing in `make test`: each target runs this many inputs, 7 to
# 17 s on a 2-core machine. A count, not a duration: with a duration, Go
# 1.26's fuzzing coordinator can fail the run with "context deadline
# exceeded" as the time runs out (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 300000x

.PHONY: all help deps build libs generate demo test vet test-nocgo test-race fuzz bench clean

all: build

help:
	@echo "make demo   build the tools, wrap the system zlib and run the end-to-end demo"
	@echo "make test   go vet, then every test with CGO_ENABLED=0 and with -race, then bounded fuzzing"
	@echo "make bench  run the benchmarks recorded in docs/benchmarks.md"
	@echo "make build  build bin/libwrapgen and bin/libswap"
	@echo "make libs   build the C test libraries in testdata/libs/build"

# deps checks the tools and system files the project needs and names the
# Debian package that provides each missing one. It installs nothing.
deps:
	@missing=""; \
	command -v $(GO) >/dev/null 2>&1 || missing="$$missing\n  go: install Go 1.26 or later (https://go.dev/dl)"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing\n  gcc: apt-get install gcc"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing\n  g++: apt-get install g++"; \
	test -e $(LIBDIR)/libz.so.1 || missing="$$missing\n  $(LIBDIR)/libz.so.1: apt-get install zlib1g"; \
	test -e /usr/include/zlib.h || missing="$$missing\n  /usr/include/zlib.h: apt-get install zlib1g-dev"; \
	if [ -n "$$missing" ]; then printf "missing requirements:$$missing\n" >&2; exit 1; fi
	@for pair in libbz2.so.1.0:libbz2-1.0 liblzma.so.5:liblzma5 libzstd.so.1:libzstd1 \
		libexpat.so.1:libexpat1 libsqlite3.so.0:libsqlite3-0 libcrypto.so.3:libssl3 libxml2.so.2:libxml2; do \
		lib=$${pair%%:*}; pkg=$${pair##*:}; \
		test -e $(LIBDIR)/$$lib || echo "note: $(LIBDIR)/$$lib not found; its tests skip (apt-get install $$pkg)"; \
	done

build: deps
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/libwrapgen ./cmd/libswap

libs: deps
	$(MAKE) -C testdata/libs

# generate rewrites the committed zlib wrapper from this system's library
# and header; `git diff examples/zlib` shows any difference.
generate: build
	$(BIN)/libwrapgen -lib $(LIBDIR)/libz.so.1 -header /usr/include/zlib.h -pkg zlib -o examples/zlib

demo: build libs generate
	CGO_ENABLED=0 $(GO) run ./examples/demo -libswap $(BIN)/libswap \
		-v1 testdata/libs/build/v1/libversioned.so.1 -v2 testdata/libs/build/v2/libversioned.so.1

vet: deps
	$(GO) vet ./...

test-nocgo: libs
	CGO_ENABLED=0 $(GO) test ./...

test-race: libs
	CGO_ENABLED=1 $(GO) test -race ./...
	cd bench/cgo && CGO_ENABLED=1 $(GO) vet . && CGO_ENABLED=1 $(GO) test -race .

# Fuzzing shrinks each new input for up to a minute by default, and a run
# of seconds finds many new inputs; capping minimization at 100 attempts
# keeps the bounded run spent on fuzzing.
fuzz: libs
	CGO_ENABLED=0 $(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./loader
	CGO_ENABLED=0 $(GO) test -run '^$$' -fuzz '^FuzzParseLibrary$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./gen

test: vet test-nocgo test-race fuzz

# bench/cgo is a separate module: its cgo baseline and every gate variant
# run in one process, so the ratios in docs/benchmarks.md compare figures
# from the same run.
bench: libs
	cd bench/cgo && CGO_ENABLED=1 $(GO) test -run '^$$' -bench . -benchmem -count 5 .
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchmem -count 5 ./trampoline ./loader

clean:
	rm -rf $(BIN) testdata/libs/build
