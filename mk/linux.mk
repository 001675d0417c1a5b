# mk/linux.mk — Linux guest assets and the nested test host.
# Include it from the top-level Makefile, or use it alone: make -f mk/linux.mk TARGET
#
#   guest-linux          fetch the kernel KERNEL_PACKAGE names (default: Debian's cloud kernel) and
#                        busybox-static and build the level-2 demo guest with that kernel's own
#                        modules: $(LINUX_OUT)/vmlinuz, $(LINUX_OUT)/initrd.cpio.gz
#   guest-linux-second   the same for SECOND_KERNEL_PACKAGE (e2e's second flavour)
#   guest-linux-fio      the same guest with fio added, for `apus bench blk`:
#                        $(LINUX_OUT)/initrd-fio.cpio.gz
#   guest-linux-iperf3   the same guest with iperf3, for `apus bench net`:
#                        $(LINUX_OUT)/initrd-iperf3.cpio.gz
#   linux-bzimage-info   print (and sanity-check) the bzImage setup header of $(LINUX_OUT)/vmlinuz
#   nested-host-check    boot the nested test host with the kvmcheck payload; fails unless KVM
#                        works inside it (exits/timings are printed)
#   nested-detect        print "hardware" or "nested" (see guest/nested/detect.sh)
#   guest-linux-clean    remove the build products of this file (not the downloaded .debs)
#
# Scripts are idempotent and fast when nothing changed, so these targets are always run (.PHONY).

APUS_LINUX_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
APUS_ROOT ?= $(patsubst %/,%,$(dir $(APUS_LINUX_MK_DIR)))
GUEST_BUILD ?= $(APUS_ROOT)/guest/build
# KERNEL_PACKAGE: the Debian kernel package of the level-2 guest (make run, make e2e, the
# benchmarks), with its own modules; any flavour: linux-image-amd64, linux-image-rt-amd64, ...
# SECOND_KERNEL_PACKAGE: the flavour e2e also runs the groups on that the first cannot show (MP
# table SMP: the cloud kernel does not parse MP tables) and the repeated ttyS0 input scenario.
DEFAULT_KERNEL_PACKAGE := linux-image-cloud-amd64
KERNEL_PACKAGE ?= $(DEFAULT_KERNEL_PACKAGE)
SECOND_KERNEL_PACKAGE ?= linux-image-rt-amd64
linux_assets_dir = $(shell bash -c '. $(APUS_ROOT)/guest/linux/lib.sh && linux_assets_dir $(1)')
LINUX_OUT ?= $(call linux_assets_dir,$(KERNEL_PACKAGE))
SECOND_LINUX_OUT ?= $(call linux_assets_dir,$(SECOND_KERNEL_PACKAGE))
NESTED_OUT ?= $(GUEST_BUILD)/nested
NESTED_TIMEOUT ?= 1200
KVMCHECK_CC ?= gcc

.PHONY: guest-linux guest-linux-fio guest-linux-iperf3 guest-linux-second linux-bzimage-info nested-host-check nested-detect guest-linux-clean

guest-linux:
	KERNEL_PACKAGE=$(KERNEL_PACKAGE) $(APUS_ROOT)/guest/linux/build-initramfs.sh $(LINUX_OUT)

guest-linux-fio:
	KERNEL_PACKAGE=$(KERNEL_PACKAGE) $(APUS_ROOT)/guest/linux/build-initramfs.sh --fio $(LINUX_OUT)

guest-linux-iperf3:
	KERNEL_PACKAGE=$(KERNEL_PACKAGE) $(APUS_ROOT)/guest/linux/build-initramfs.sh --iperf3 $(LINUX_OUT)

guest-linux-second:
	KERNEL_PACKAGE=$(SECOND_KERNEL_PACKAGE) $(APUS_ROOT)/guest/linux/build-initramfs.sh $(SECOND_LINUX_OUT)

linux-bzimage-info:
	KERNEL_PACKAGE=$(KERNEL_PACKAGE) $(APUS_ROOT)/guest/linux/fetch-assets.sh $(LINUX_OUT)
	$(APUS_ROOT)/guest/linux/bzimage-info.sh $(LINUX_OUT)/vmlinuz

$(NESTED_OUT)/kvmcheck/kvmcheck: $(APUS_ROOT)/guest/nested/kvmcheck.c
	@mkdir -p $(@D)
	$(KVMCHECK_CC) -static -O2 -Wall -Wextra -o $@ $<

$(NESTED_OUT)/kvmcheck/run.sh: $(APUS_ROOT)/guest/nested/kvmcheck-run.sh
	@mkdir -p $(@D)
	install -m 0755 $< $@

nested-host-check: $(NESTED_OUT)/kvmcheck/kvmcheck $(NESTED_OUT)/kvmcheck/run.sh
	$(APUS_ROOT)/guest/nested/build-host.sh $(NESTED_OUT)/kvmcheck $(NESTED_OUT)/host-kvmcheck.cpio
	$(APUS_ROOT)/guest/nested/run.sh $(NESTED_OUT)/host-kvmcheck.cpio \
		--timeout $(NESTED_TIMEOUT) --log $(NESTED_OUT)/kvmcheck.log

nested-detect:
	@$(APUS_ROOT)/scripts/linux-host.sh mode

guest-linux-clean:
	rm -rf $(LINUX_OUT)/initrd-root $(SECOND_LINUX_OUT)/initrd-root $(SECOND_LINUX_OUT)/initrd.cpio.gz $(LINUX_OUT)/initrd.cpio.gz $(LINUX_OUT)/initrd.stamp \
		$(LINUX_OUT)/initrd-fio-root $(LINUX_OUT)/initrd-fio.cpio.gz $(LINUX_OUT)/initrd-fio.stamp \
		$(LINUX_OUT)/initrd-iperf3-root $(LINUX_OUT)/initrd-iperf3.cpio.gz $(LINUX_OUT)/initrd-iperf3.stamp $(NESTED_OUT)
