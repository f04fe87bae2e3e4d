# MappedRecords: `make demo` runs the main job, `make test` runs the tests.
# Both install what is missing first.

SWIFT ?= swift
# Debian packages the build needs: LMDB for the name registry; Python's venv for the Python package's tests.
APT_PACKAGES ?= liblmdb-dev python3 python3-venv valgrind
# The Python package (python/) and its test extras live in a virtual environment in the build folder.
PYTHON_VENV ?= .build/python-venv
DEMO_DIR ?= demo-output

.PHONY: all deps build lint docs man test perfgate python-venv python-test demo bench compare latency migrate registry journal fuzz sanitize soak clean

SECONDS ?= 60
MINUTES ?= 30
UPDATE ?= 0

all: build

deps:
	@command -v $(SWIFT) >/dev/null || { echo "error: the Swift toolchain ($(SWIFT)) is not on PATH"; exit 1; }
	@.ci/install-packages $(APT_PACKAGES)

build: deps
	$(SWIFT) build

# Formatting is a gate: any finding of `swift format lint --strict` fails the build
# (.swift-format; Tests/.swift-format leaves test helpers without doc comments), and so does a
# Swift file in Sources over 450 lines.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests
	@long="$$(find Sources -name '*.swift' -exec wc -l {} + | awk '$$2 != "total" && $$1 > 450')"; \
	  if [ -n "$$long" ]; then echo "lint: Swift files over 450 lines (cut them at their seams):"; echo "$$long"; exit 1; fi

# The whole suite: unit tests, real child processes, traps (exit tests), a 64 GiB sparse file,
# the I/O-failure sweep and 1,000 power-loss images; then 30 s of fuzzing per target. It fails
# if the run leaves anything in /tmp or /dev/shm.
# The toolchain's own temporary files (SwiftPM's locks and folders) go to .build/tmp, so that
# the leftover check sees only what the tests themselves leave.
test: export TMPDIR := $(CURDIR)/.build/tmp
test: deps lint
	@mkdir -p .build/tmp && Tests/leftovers.sh before .build/leftovers-before.txt
	$(SWIFT) build --build-tests
	$(SWIFT) test
	$(MAKE) docs
	$(MAKE) perfgate
	$(MAKE) python-test
	Tests/Fuzz/run.sh 30
	@Tests/leftovers.sh after .build/leftovers-before.txt

# The DocC documentation of the three library modules (Sources/<Module>/<Module>.docc), with
# DocC's warnings as errors; writes .build/docs/<Module>.doccarchive (`docc preview` serves one).
docs: export TMPDIR := $(CURDIR)/.build/tmp
docs: deps
	@mkdir -p .build/tmp
	Tests/docs.sh

# mrec's manual page, docs/man/mrec.1, from its --help texts (swift-argument-parser's generate-manual
# plug-in; it builds the package in release mode first). `man -l docs/man/mrec.1` reads it.
man: export TMPDIR := $(CURDIR)/.build/tmp
man: deps
	@mkdir -p .build/tmp docs/man
	$(SWIFT) package generate-manual
	cp .build/plugins/GenerateManual/outputs/mrec/mrec.1 docs/man/mrec.1

# Instructions per operation of the hot paths (callgrind), against Tests/PerfGate/baseline.txt:
# fails when one grows more than 5 %. UPDATE=1 rewrites the baseline (commit it, saying why).
perfgate: export TMPDIR := $(CURDIR)/.build/tmp
perfgate: deps
	@mkdir -p .build/tmp
	UPDATE=$(UPDATE) Tests/PerfGate/run.sh

# A virtual environment under the build folder with python/ and its test extras (numpy, pyarrow,
# pandas, dask, distributed, pytest) from PyPI; made once, refreshed when pyproject.toml changes.
$(PYTHON_VENV)/.installed: python/pyproject.toml
	python3 -m venv $(PYTHON_VENV)
	$(PYTHON_VENV)/bin/pip install --quiet --upgrade pip
	$(PYTHON_VENV)/bin/pip install --quiet "./python[test]"
	@touch $@

python-venv: deps $(PYTHON_VENV)/.installed

# The Python package's tests, across languages: they run mrec and the Swift test helper.
# The package is built as an sdist and a py3-none-any wheel (python -m build), the wheel is
# installed, mypy --strict checks the package and a user's program against it, and the tests
# import the installed wheel, so that a file missing from it fails here.
PYTHON_DIST ?= .build/python-dist
python-test: export TMPDIR := $(CURDIR)/.build/tmp
python-test: python-venv
	@mkdir -p .build/tmp
	$(SWIFT) build --product mrec
	$(SWIFT) build --product mapped-test-helper
	rm -rf $(PYTHON_DIST) python/build python/mappedrecords.egg-info
	$(PYTHON_VENV)/bin/python -m build --outdir $(PYTHON_DIST) python
	rm -rf python/build python/mappedrecords.egg-info
	$(PYTHON_VENV)/bin/pip install --quiet --no-deps --force-reinstall $(PYTHON_DIST)/mappedrecords-*-py3-none-any.whl
	cd python && $(CURDIR)/$(PYTHON_VENV)/bin/mypy --cache-dir $(CURDIR)/.build/mypy-cache mappedrecords
	cd .build/tmp && $(CURDIR)/$(PYTHON_VENV)/bin/mypy --strict --cache-dir $(CURDIR)/.build/mypy-cache-user $(CURDIR)/python/tests/typing_usage.py
	cd .build/tmp && MAPPEDRECORDS_TEST_INSTALLED=1 MAPPEDRECORDS_BIN="$$(cd $(CURDIR) && $(SWIFT) build --show-bin-path)" \
	  $(CURDIR)/$(PYTHON_VENV)/bin/python -m pytest -p no:logging -p no:cacheprovider --rootdir $(CURDIR)/python $(CURDIR)/python/tests

# The main job: `mrec demo` (a writer and two readers share a table by name), then the seed's
# examples as real processes: two sharing an image file, and Process A, B and C sharing memory
# and a mutex by name.
demo: export TMPDIR := $(CURDIR)/.build/tmp
demo: deps
	@mkdir -p .build/tmp
	$(SWIFT) build -c release --product mrec
	$(SWIFT) build -c release --product brighten-image
	$(SWIFT) build -c release --product brighten-region
	$(SWIFT) build -c release --product seed-process-a
	$(SWIFT) build -c release --product seed-process-b
	$(SWIFT) build -c release --product seed-process-c
	@Sources/Examples/demo.sh "$$($(SWIFT) build -c release --show-bin-path)" "$(DEMO_DIR)"

# Benchmarks (ordo-one/benchmark), each beside its baseline from the same run; see docs/PERFORMANCE.md.
bench: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark \
		--target MappedViews --target RecordTables --target Registry --format markdown > .benchmark-output.md
	@python3 Benchmarks/ratios.py < Benchmarks/.benchmark-output.md

# MappedRecords beside numpy.memmap, LMDB, SQLite, pread and a raw C pointer, in one run;
# writes docs/compare/results.md and docs/compare/compare.png (about 20 minutes; see docs/PERFORMANCE.md).
compare: deps
	Benchmarks/compare/run.sh

# Append → visible between processes for each way of waiting (futex, spin, the old polling) beside a
# C busy-spin reader; idle CPU; append throughput with blocked followers. Writes docs/compare/latency.md.
latency: deps
	Benchmarks/latency/run.sh

# Migration of 16 M records beside cp and cp + fsync, warm and (as root) cold, 3 rounds. Writes
# docs/compare/migrate.md and its chart, docs/compare/migrate.png (about 5 minutes).
migrate: deps
	Benchmarks/migrate/run.sh 16777216 3 | tee docs/compare/migrate.md.tmp
	mv docs/compare/migrate.md.tmp docs/compare/migrate.md
	python3 Benchmarks/migrate/chart.py docs/compare/migrate.md docs/compare/migrate.png

# openExisting + close of a name another process holds, with 10, 1,000 and 100,000 names, beside a
# raw open/fstat/mmap/munmap/close of the same file. Writes docs/compare/registry.md (about 2 minutes).
registry: deps
	Benchmarks/compare/registry.sh 3

# Shared appenders (one, and two processes together) against the exclusive writer, and a
# follower crossing a series' rolls, on disk and on tmpfs. Writes docs/compare/journal.md (about 3 minutes).
journal: deps
	Benchmarks/journal/run.sh

# Each fuzz target for $(SECONDS) s under libFuzzer and AddressSanitizer (docs/RELIABILITY.md).
fuzz: deps
	Tests/Fuzz/run.sh $(SECONDS)

# The whole suite under AddressSanitizer, then ThreadSanitizer, each in its own build folder.
# SIGBUS stays a signal (tests expect readers of truncated files to die of it); the XCTest
# harness's own allocations are suppressed (Tests/Sanitizers/lsan.supp).
sanitize: deps
	ASAN_OPTIONS=handle_sigbus=0 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/Sanitizers/lsan.supp \
	  $(SWIFT) test --scratch-path .build-asan --sanitize=address -Xswiftc -DMAPPED_RECORDS_ASAN
	TSAN_OPTIONS=handle_sigbus=0 $(SWIFT) test --scratch-path .build-tsan --sanitize=thread -Xswiftc -DMAPPED_RECORDS_TSAN

# $(MINUTES) minutes of 1 writer, 8 readers and registry churn with kill -9s, checked each round.
soak: deps
	$(SWIFT) build --product mapped-test-helper
	$(SWIFT) build --product mrec
	Tests/Soak/run.sh $(MINUTES)

clean:
	$(SWIFT) package clean
	rm -rf $(DEMO_DIR)
