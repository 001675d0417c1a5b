# mk/linux.mk — Linux guest assets and the nested test host.
# Include it from the top-level Makefile, or use it alone: make -f mk/linux.mk TARGET
#
#   guest-linux          fetch the Debian cloud kernel + busybox-static and build the level-2 demo
#                        guest: $(LINUX_OUT)/vmlinuz, $(LINUX_OUT)/initrd.cpio.gz
#   guest-linux-fio      the same guest with fio added, for `apus bench blk`:
#                        $(LINUX_OUT)/initrd-fio.cpio.gz
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
LINUX_OUT ?= $(GUEST_BUILD)/linux
NESTED_OUT ?= $(GUEST_BUILD)/nested
NESTED_TIMEOUT ?= 1200
KVMCHECK_CC ?= gcc

.PHONY: guest-linux guest-linux-fio linux-bzimage-info nested-host-check nested-detect guest-linux-clean

guest-linux:
	$(APUS_ROOT)/guest/linux/build-initramfs.sh $(LINUX_OUT)

guest-linux-fio:
	$(APUS_ROOT)/guest/linux/build-initramfs.sh --fio $(LINUX_OUT)

linux-bzimage-info:
	$(APUS_ROOT)/guest/linux/fetch-assets.sh $(LINUX_OUT)
	$(APUS_ROOT)/guest/linux/bzimage-info.sh $(LINUX_OUT)/vmlinuz

$(NESTED_OUT)/kvmcheck/kvmcheck: $(APUS_ROOT)/guest/nested/kvmcheck.c
	@mkdir -p $(@D)
	$(KVMCHECK_CC) -static -O2 -Wall -Wextra -o $@ $<

$(NESTED_OUT)/kvmcheck/run.sh: $(APUS_ROOT)/guest/nested/kvmcheck-run.sh
	@mkdir -p $(@D)
	install -m 0755 $< $@

nested-host-check: $(NESTED_OUT)/kvmcheck/kvmcheck $(NESTED_OUT)/kvmcheck/run.sh
	APUS_LINUX_ASSETS=$(LINUX_OUT) $(APUS_ROOT)/guest/nested/run.sh $(NESTED_OUT)/kvmcheck \
		--timeout $(NESTED_TIMEOUT) --log $(NESTED_OUT)/kvmcheck.log

nested-detect:
	@$(APUS_ROOT)/guest/nested/detect.sh

guest-linux-clean:
	rm -rf $(LINUX_OUT)/initrd-root $(LINUX_OUT)/initrd.cpio.gz $(LINUX_OUT)/initrd.stamp \
		$(LINUX_OUT)/initrd-fio-root $(LINUX_OUT)/initrd-fio.cpio.gz $(LINUX_OUT)/initrd-fio.stamp $(NESTED_OUT)
