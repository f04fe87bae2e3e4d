# MappedRecords: `make demo` runs the main job, `make test` runs the tests.
# Both install what is missing first.

SWIFT ?= swift
# Debian packages the build needs: LMDB for the name registry.
APT_PACKAGES ?= liblmdb-dev
DEMO_DIR ?= demo-output

.PHONY: all deps build test demo bench clean

all: build

deps:
	@command -v $(SWIFT) >/dev/null || { echo "error: the Swift toolchain ($(SWIFT)) is not on PATH"; exit 1; }
	@.ci/install-packages $(APT_PACKAGES)

build: deps
	$(SWIFT) build

# The whole suite: unit tests, real child processes, traps (exit tests), a 64 GiB sparse file.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The main job: `mrec demo` (a writer and two readers share a table by name), then the seed's
# examples as real processes: two sharing an image file, and Process A, B and C sharing memory
# and a mutex by name.
demo: deps
	$(SWIFT) build -c release --product mrec
	$(SWIFT) build -c release --product brighten-image
	$(SWIFT) build -c release --product brighten-region
	$(SWIFT) build -c release --product seed-process-a
	$(SWIFT) build -c release --product seed-process-b
	$(SWIFT) build -c release --product seed-process-c
	@Sources/Examples/demo.sh "$$($(SWIFT) build -c release --show-bin-path)" "$(DEMO_DIR)"

# Benchmarks (ordo-one/benchmark), each beside its baseline from the same run; see docs/PERFORMANCE.md.
bench: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark --format markdown > .benchmark-output.md
	@python3 Benchmarks/ratios.py < Benchmarks/.benchmark-output.md

clean:
	$(SWIFT) package clean
	rm -rf $(DEMO_DIR)
