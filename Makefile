# Top-level entry points. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
DATA_DIR ?= default.etcd
# seconds each fuzz target runs in `make test` (`make fuzz` runs FUZZ_SECONDS, default 60)
TEST_FUZZ_SECONDS ?= 20

.PHONY: all deps build run test unit integration e2e bench fuzz soak chaos asan clean format install

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# Build, then start a single-node server exactly as `etcd` with no flags does.
run: deps build
	exec $(BUILD)/cetcd

# ctest's schedule (tests/schedule.cmake): long background pollers beside the rest, cluster
# and timing tests alone, other tests two at a time on the two "cpus" slots of this spec.
CTEST_SCHEDULED = ctest --output-on-failure -j 4 --resource-spec-file $(CURDIR)/tests/ctest-resources.json

# Build everything and pass every test: unit, sim, integration, interop, etcd's own e2e tests
# (ctest's e2e/etcd_e2e_gate), the unit tests again under ASan/UBSan, and each fuzz target
# for TEST_FUZZ_SECONDS.
test: deps build
	cd $(BUILD) && $(CTEST_SCHEDULED)
	$(MAKE) asan
	FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) scripts/fuzz.sh

unit: build
	cd $(BUILD) && ctest --output-on-failure -R '^unit/'

integration: build
	cd $(BUILD) && ctest --output-on-failure -R '^(integration|interop)/'

e2e: build
	scripts/run-e2e.sh

asan:
	cmake -S . -B build-asan -DCETCD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && $(CTEST_SCHEDULED) -R '^unit/'

# BENCH_ARGS: extra scripts/bench.py flags, e.g. --only cluster (docs/PERFORMANCE.md)
BENCH_ARGS ?=
bench: deps build
	scripts/bench.sh $(BENCH_ARGS)

fuzz: deps
	scripts/fuzz.sh

soak: deps build
	scripts/soak.sh

# The long fault-injection sweep (tests/chaos/chaos.py; docs/RELIABILITY.md): CHAOS_RUNS runs
# of CHAOS_DURATION seconds of load each, alternating 3- and 5-member clusters.
CHAOS_RUNS ?= 100
CHAOS_DURATION ?= 30
chaos: deps build
	CETCD_BIN=$(abspath $(BUILD))/cetcd /usr/bin/python3 tests/chaos/chaos.py \
	  --runs $(CHAOS_RUNS) --duration $(CHAOS_DURATION) --out $(BUILD)/chaos

# Install libcetcd (libs, headers, cetcd.pc) under $(PREFIX); DESTDIR is honoured by
# cmake --install for staged installs (make install PREFIX=/usr DESTDIR=/tmp/stage).
PREFIX ?= /usr/local
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
