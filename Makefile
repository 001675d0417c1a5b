# Apus — top-level build. `make test` and `make run` do all the set-up on a fresh machine.
#
#   make            build apus (debug) and the bare-metal guests
#   make test       unit + KVM integration tests (+ Linux end-to-end once it lands)
#   make run        boot the demo guest
#   make guests     build the bare-metal test guests into guest/build/bare
#   make release    build an optimized apus into .build/release/apus

SHELL := /bin/bash
# The Swift toolchain lives in /opt/swift on the project's machines.
ifneq ($(wildcard /opt/swift/usr/bin/swift),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif

SWIFT ?= swift
APUS_DEBUG := .build/debug/apus
APUS_RELEASE := .build/release/apus

.PHONY: all deps build release guests test unit run clean

all: build guests

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

guests: deps
	@$(MAKE) -s -C guest/bare

# Unit tests and KVM integration tests (real /dev/kvm; APUS_REQUIRE_KVM=1 turns a missing
# /dev/kvm into a failure instead of a skip).
unit: guests
	$(SWIFT) test

test: unit

run: build guests
	$(APUS_DEBUG) run --bare guest/build/bare/hello.bin

clean:
	rm -rf .build guest/build
