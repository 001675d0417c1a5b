# Apus — top-level build. `make test` and `make run` do all the set-up on a fresh machine.
#
#   make            build apus (debug) and the bare-metal guests
#   make test       everything CI runs: unit + KVM integration tests, CLI error tests, Linux e2e,
#                   benchmark smoke tests
#   make run        boot the demo Linux guest (directly, or in the nested test host here)
#   make unit       unit + KVM integration tests only (swift test)
#   make e2e        Linux end-to-end scenarios only
#   make bench-smoke  apus bench boot and blk, one short run each (part of make test)
#   make guests     bare-metal test guests → guest/build/bare
#   make guest-linux  Debian cloud kernel + busybox initramfs → guest/build/linux
#   make release    optimized, statically linked apus → .build/release/apus
#   make bench      apus bench exits: the exit-cost table, apus beside a minimal C loop
#   make bench-boot apus bench boot: boot time, apus beside QEMU microvm and q35 (nested host here)
#   make bench-blk  apus bench blk: virtio-blk throughput and IOPS (fio), apus beside QEMU

SHELL := /bin/bash
# The Swift toolchain lives in /opt/swift on the project's machines.
ifneq ($(wildcard /opt/swift/usr/bin/swift),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif

SWIFT ?= swift
APUS_DEBUG := .build/debug/apus
APUS_RELEASE := .build/release/apus
LINUX_ASSETS := guest/build/linux

include mk/linux.mk

.PHONY: all deps build release guests guest bench-tools unit cli-tests e2e test run bench bench-boot bench-blk bench-smoke clean

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

cli-tests: release guests bench-tools guest-linux
	tests/cli-errors.sh $(APUS_RELEASE) $(LINUX_ASSETS)/vmlinuz $(LINUX_ASSETS)/initrd.cpio.gz
	tests/malloc-per-exit.sh $(APUS_RELEASE) guest/build/bench/malloc-count.so guest/build/bare/bench-exits.bin

e2e: release guest-linux
	guest/e2e/run-e2e.sh

# One short run of each Linux benchmark: they must keep working (no thresholds on the figures).
bench-smoke: release guest-linux guest-linux-fio
	tests/bench-linux-smoke.sh

test: unit cli-tests e2e bench-smoke

run: release guest-linux
	scripts/run-demo.sh

bench: release guests bench-tools
	$(APUS_RELEASE) bench exits

# BENCH_ARGS: extra `apus bench boot|blk` options, e.g. make bench-blk BENCH_ARGS='--runs 5 --json'.
bench-boot: release guest-linux
	scripts/bench-linux.sh boot $(BENCH_ARGS)

bench-blk: release guest-linux guest-linux-fio
	scripts/bench-linux.sh blk $(BENCH_ARGS)

clean:
	rm -rf .build guest/build/bare guest/build/bench guest/build/e2e guest/build/demo \
		guest/build/bench-linux guest/build/bench-smoke
