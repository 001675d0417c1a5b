# Apus — top-level build. `make test` and `make run` do all the set-up on a fresh machine.
#
#   make            build apus (debug) and the bare-metal guests
#   make test       everything CI runs: unit + KVM integration tests (plain and under
#                   ThreadSanitizer), CLI error tests, Linux e2e, the nested harness's self-test,
#                   benchmark and fuzz smoke tests
#   make run        boot the demo Linux guest (directly, or in the nested test host here)
#   make unit       unit + KVM integration tests only (swift test)
#   make e2e        Linux end-to-end scenarios only, in groups (E2E_GROUPS='a b' for a subset)
#   make harness-selftest  the nested host killed on purpose mid-group costs one rerun, no failure
#   make nested-soak  boot the level-2 guest SOAK_BOOTS times in fresh nested hosts and count
#                   how the nested host fails, by kind (APUS_NESTED_* to try other configurations)
#
#   KERNEL_PACKAGE=linux-image-rt-amd64 (any Debian kernel package) with run, e2e, guest-linux and
#   the benchmarks builds and boots that kernel with its own modules.
#   make bench-smoke  apus bench boot, blk and net, one short run of each column (part of make test)
#   make fuzz       each libFuzzer target (Fuzz/) for FUZZ_SECONDS (default 60); fuzz-smoke, part of
#                   make test, for FUZZ_SMOKE_SECONDS (10). A crash fails either.
#   make tsan       the unit and KVM tests under ThreadSanitizer (part of make test)
#   make guests     bare-metal test guests → guest/build/bare
#   make guest-linux  Debian cloud kernel + busybox initramfs → guest/build/linux
#   make release    optimized, statically linked apus → .build/release/apus
#   make bench      apus bench exits: the exit-cost table, apus beside a minimal C loop
#   make bench-boot apus bench boot: boot time, apus over virtio-mmio, virtio-pci (MMIO and PIO
#                   doorbells) beside QEMU microvm and q35 (nested host here)
#   make bench-blk  apus bench blk: virtio-blk throughput and IOPS (fio), the same five columns
#   make bench-net  apus bench net: virtio-net TCP throughput and small-UDP rate (iperf3), apus and
#                   QEMU q35, each with its own data path and with vhost-net (nested host here)

SHELL := /bin/bash
# The Swift toolchain lives in /opt/swift on the project's machines.
ifneq ($(wildcard /opt/swift/usr/bin/swift),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif

SWIFT ?= swift
APUS_DEBUG := .build/debug/apus
APUS_RELEASE := .build/release/apus

# mk/linux.mk has rules of its own: keep `make` alone building what the header says.
.DEFAULT_GOAL := all
include mk/linux.mk

.PHONY: all deps build release guests guest bench-tools unit tsan cli-tests e2e harness-selftest nested-soak \
	test run bench bench-boot bench-blk bench-net bench-smoke fuzz-build fuzz fuzz-smoke clean

# `make guest`: the Linux guest assets (alias of guest-linux from mk/linux.mk).
guest: guest-linux

all: build guests

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Static Swift runtime: the same binary runs inside the nested test host.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

guests: deps
	@$(MAKE) -s -C guest/bare

# The C reference loop for `apus bench exits` and the malloc-counting shim.
bench-tools: deps
	@$(MAKE) -s -C guest/bench

# Unit tests and KVM integration tests (real /dev/kvm; APUS_REQUIRE_KVM=1 turns a missing
# /dev/kvm into a failure instead of a skip).
unit: guests
	$(SWIFT) test

# The unit and KVM tests under ThreadSanitizer, in a build of their own (apus too: some tests
# run it as a child). TSan sees our locks because they are `Locked` (Sources/Locking), not bare
# Synchronization.Mutex. Any report fails the run (TSan's exit status 66), even when every test
# passed. No suppressions: nothing outside apus has been reported so far.
TSAN_BUILD := .build-tsan
tsan: guests
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path $(TSAN_BUILD)
	$(SWIFT) test --skip-build --sanitize=thread --scratch-path $(TSAN_BUILD)

cli-tests: release guests bench-tools guest-linux
	tests/cli-errors.sh $(APUS_RELEASE) $(LINUX_OUT)/vmlinuz $(LINUX_OUT)/initrd.cpio.gz
	tests/malloc-per-exit.sh $(APUS_RELEASE) guest/build/bench/malloc-count.so guest/build/bare/bench-exits.bin

E2E_ENV = LINUX_ASSETS=$(LINUX_OUT) SECOND_LINUX_ASSETS=$(SECOND_LINUX_OUT)
e2e: release guest-linux guest-linux-second
	$(E2E_ENV) APUS_E2E_GROUPS='$(E2E_GROUPS)' guest/e2e/run-e2e.sh

# The harness itself: a nested host frozen (a lockup) and one killed (a reset) in the middle of a
# group each cost that group one rerun, and the run still passes.
harness-selftest: release guest-linux
	LINUX_ASSETS=$(LINUX_OUT) tests/nested-harness-selftest.sh

SOAK_BOOTS ?= 20
nested-soak: release guest-linux
	LINUX_ASSETS=$(LINUX_OUT) scripts/nested-soak.sh $(SOAK_BOOTS)

# One short run of each Linux benchmark, every column once (boot and blk: apus-mmio, apus-pci,
# apus-pci-pio and both QEMUs; net: apus-pci and qemu-q35, with and without vhost-net): they must
# keep working (no thresholds on the figures). In the nested host here: boot about 40 s, blk about
# 2 min, net 1.5 to 2 min (its own nested host boot included).
bench-smoke: release guest-linux guest-linux-fio guest-linux-iperf3
	LINUX_ASSETS=$(LINUX_OUT) tests/bench-linux-smoke.sh

# libFuzzer targets (Fuzz/; docs/security.md, "Fuzzing"), built with AddressSanitizer into
# their own build directory. The manifest declares them only when APUS_FUZZ is set, and only
# one product at a time: SwiftPM parses every executable as a library under --sanitize fuzzer,
# which `apus`'s top-level main.swift cannot be.
FUZZ_TARGETS := split-queue virtio-blk virtio-net virtio-mmio virtio-pci pci-root bzimage size-parser json
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_BUILD := .build-fuzz

# --sanitize makes SwiftPM link libFuzzer's main; the trailing -sanitize=fuzzer,address is what
# instruments the Swift code, since swiftc keeps only its last -sanitize= flag and SwiftPM
# passes the two separately (coverage would be lost). lld: gold warns about ASan's symbols.
FUZZ_FLAGS := --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld

fuzz-build: deps
	@for t in $(FUZZ_TARGETS); do \
		APUS_FUZZ=1 $(SWIFT) build -q --scratch-path $(FUZZ_BUILD) $(FUZZ_FLAGS) --product fuzz-$$t || exit 1; \
	done

fuzz: fuzz-build
	Fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	Fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_BUILD) $(FUZZ_TARGETS)

test: unit tsan cli-tests e2e harness-selftest bench-smoke fuzz-smoke

run: release guest-linux
	LINUX_ASSETS=$(LINUX_OUT) scripts/run-demo.sh

bench: release guests bench-tools
	$(APUS_RELEASE) bench exits

# BENCH_ARGS: extra `apus bench boot|blk|net` options, e.g. make bench-blk BENCH_ARGS='--runs 5 --json'
# or BENCH_ARGS='--vmm apus-pci apus-pci-pio --baseline apus-pci' (all five VMMs by default).
bench-boot: release guest-linux
	LINUX_ASSETS=$(LINUX_OUT) scripts/bench-linux.sh boot $(BENCH_ARGS)

bench-blk: release guest-linux guest-linux-fio
	LINUX_ASSETS=$(LINUX_OUT) scripts/bench-linux.sh blk $(BENCH_ARGS)

# make bench-net BENCH_ARGS='--runs 5 --time 10' or '--vmm apus-mmio qemu-microvm --vhost off'
bench-net: release guest-linux guest-linux-iperf3
	LINUX_ASSETS=$(LINUX_OUT) scripts/bench-linux.sh net $(BENCH_ARGS)

clean:
	rm -rf .build $(TSAN_BUILD) $(FUZZ_BUILD) guest/build/bare guest/build/bench guest/build/e2e guest/build/demo \
		guest/build/bench-linux guest/build/bench-smoke guest/build/harness-selftest guest/build/soak
