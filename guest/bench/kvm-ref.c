/* kvm-ref: the smallest honest KVM_RUN loop, as the yardstick for apus's exit path.
 *
 * It builds the same machine apus builds for bare-metal guests (in-kernel irqchip and PIT,
 * long mode with the same GDT and identity page tables, the same probe devices and ioeventfd
 * doorbells at the same addresses) and runs the same guest binary, but handles exits with a
 * bare switch and range checks instead of buses and device objects.
 *
 * usage: kvm-ref GUEST.bin ITERATIONS REPETITIONS
 * Prints "report <value>" for each value the guest wrote to a probe's REPORT register and exits
 * with the guest's debug-exit status. Used by `apus bench exits`. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The board (Sources/Machine/MemoryMap.swift, guest/bare/board.inc). */
#define RAM_SIZE (32u << 20)
#define IMAGE 0x100000u
#define PARAMS 0x6000u
#define GDT 0x500u
#define PML4 0x9000u
#define PROBE_PORT 0x510u
#define PROBE_MMIO 0xd0000000ull
#define PROBE_REPORT 8u
#define DEBUG_EXIT 0x501u

static void die(const char *what) { fprintf(stderr, "kvm-ref: %s: %s\n", what, strerror(errno)); exit(71); }

static uint64_t reports[4096];
static int nreports;

static void ioevent(int vm, uint64_t addr, uint32_t len, int pio, int match, uint64_t value) {
    struct kvm_ioeventfd r = { .addr = addr, .len = len, .fd = eventfd(0, EFD_NONBLOCK) };
    if (pio) r.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (match) { r.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH; r.datamatch = value; }
    if (ioctl(vm, KVM_IOEVENTFD, &r) < 0) die("KVM_IOEVENTFD");
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: kvm-ref GUEST.bin ITERATIONS REPETITIONS\n"); return 64; }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint64_t idmap = 0xfffbc000;
    ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000);
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = {0};
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("KVM_CREATE_PIT2");

    uint8_t *mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    struct kvm_userspace_memory_region region = { .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)mem };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

    FILE *f = fopen(argv[1], "rb");
    if (!f) die(argv[1]);
    size_t n = fread(mem + IMAGE, 1, RAM_SIZE - IMAGE, f);
    fclose(f);
    if (n == 0) die("empty guest");
    uint64_t *params = (uint64_t *)(mem + PARAMS);
    params[0] = strtoull(argv[2], NULL, 0);
    params[1] = strtoull(argv[3], NULL, 0);

    /* GDT: null, null, code64 @0x10, data @0x18; identity map of 4 GiB with 2 MiB pages. */
    uint64_t *gdt = (uint64_t *)(mem + GDT);
    gdt[2] = 0x00AF9B000000FFFFull;
    gdt[3] = 0x00CF93000000FFFFull;
    uint64_t *pml4 = (uint64_t *)(mem + PML4), *pdpt = (uint64_t *)(mem + 0xA000);
    pml4[0] = 0xA000 | 3;
    for (int g = 0; g < 4; g++) {
        uint64_t *pd = (uint64_t *)(mem + 0xB000 + g * 0x1000);
        pdpt[g] = (0xB000 + g * 0x1000) | 3;
        for (int i = 0; i < 512; i++) pd[i] = ((uint64_t)g << 30) | ((uint64_t)i << 21) | 0x83;
    }

    /* The doorbells, exactly as apus registers them (nobody reads the eventfds here). */
    ioevent(vm, 0x520, 4, 1, 0, 0);
    ioevent(vm, 0xd0001000, 0, 0, 0, 0);
    ioevent(vm, 0xd0001100, 4, 0, 1, 1);
    ioevent(vm, 0xd0001200, 4, 0, 0, 0);
    ioevent(vm, 0xd0001300, 0, 0, 0, 0);

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[256]; } cpuid = { .h.nent = 256 };
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) die("KVM_SET_CPUID2");
    int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");

    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    struct kvm_segment code = { .limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
    struct kvm_segment data = { .limit = 0xffffffff, .selector = 0x18, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
    s.cs = code; s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = GDT; s.gdt.limit = 31;
    s.cr3 = PML4; s.cr4 = 0x20; s.cr0 = 0x80000011; s.efer = 0x500;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs r = { .rip = IMAGE, .rsp = 0x80000, .rflags = 2, .rsi = 1 };
    if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");

    uint64_t echo = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) { if (errno == EINTR) continue; die("KVM_RUN"); }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *d = (uint8_t *)run + run->io.data_offset;
            uint16_t port = run->io.port;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                uint32_t v = 0;
                memcpy(&v, d, run->io.size);
                if (port == DEBUG_EXIT) {
                    for (int i = 0; i < nreports; i++) printf("report %llu\n", (unsigned long long)reports[i]);
                    return d[0];
                }
                if (port == PROBE_PORT + PROBE_REPORT && nreports < 4096) reports[nreports++] = v;
                else if (port == PROBE_PORT) echo = v;
            } else {
                uint64_t v = port == PROBE_PORT ? echo + 1 : (port >= PROBE_PORT && port < PROBE_PORT + 16 ? 0 : ~0ull);
                memcpy(d, &v, run->io.size);
            }
            break;
        }
        case KVM_EXIT_MMIO: {
            uint64_t a = run->mmio.phys_addr;
            if (run->mmio.is_write) {
                uint64_t v = 0;
                memcpy(&v, run->mmio.data, run->mmio.len);
                if (a == PROBE_MMIO + PROBE_REPORT && nreports < 4096) reports[nreports++] = v;
                else if (a == PROBE_MMIO) echo = v;
            } else {
                uint64_t v = a == PROBE_MMIO ? echo + 1 : 0;
                memcpy(run->mmio.data, &v, run->mmio.len);
            }
            break;
        }
        default:
            fprintf(stderr, "kvm-ref: unexpected exit reason %u\n", run->exit_reason);
            return 70;
        }
    }
}
