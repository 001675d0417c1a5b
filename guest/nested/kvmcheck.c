// kvmcheck: a tiny smoke test of /dev/kvm, used as the nested test host's check payload.
// Opens /dev/kvm, checks KVM_GET_API_VERSION == 12, creates a VM with 64 KiB of RAM at GPA 0 and
// one vCPU in real mode, runs a 16-bit snippet and checks the exits it causes:
//   1000: mov $0x3f8,%dx ; mov $'A',%al ; out %al,(%dx)   -> KVM_EXIT_IO   out 0x3f8 size 1 'A'
//         mov $0x2000,%ax ; mov %ax,%ds ; movb $0x42,(0)   -> KVM_EXIT_MMIO write 0x20000 len 1 0x42
//         hlt                                              -> KVM_EXIT_HLT
// Prints every exit and exits 0 when the sequence is exactly that. Build: gcc -static -O2.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE 0x10000
#define CODE_GPA 0x1000

static const uint8_t code[] = {
    0xba, 0xf8, 0x03,             // mov $0x3f8,%dx
    0xb0, 'A',                    // mov $'A',%al
    0xee,                         // out %al,(%dx)
    0xb8, 0x00, 0x20,             // mov $0x2000,%ax
    0x8e, 0xd8,                   // mov %ax,%ds
    0xc6, 0x06, 0x00, 0x00, 0x42, // movb $0x42,(0x0000)  -> GPA 0x20000, outside RAM
    0xf4,                         // hlt
};

static int failures;

static void die(const char *what) {
    printf("kvmcheck: FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static void expect(int ok, const char *what) {
    printf("kvmcheck:   %s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const char *exit_name(uint32_t r) {
    switch (r) {
    case KVM_EXIT_UNKNOWN: return "UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "EXCEPTION";
    case KVM_EXIT_IO: return "IO";
    case KVM_EXIT_HLT: return "HLT";
    case KVM_EXIT_MMIO: return "MMIO";
    case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
    case KVM_EXIT_INTR: return "INTR";
    case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    default: return "?";
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");

    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    printf("kvmcheck: KVM_GET_API_VERSION = %d\n", api);
    if (api != 12) { printf("kvmcheck: FAIL API version %d, expected 12\n", api); return 1; }

    static const struct { int cap; const char *name; } caps[] = {
        {KVM_CAP_USER_MEMORY, "USER_MEMORY"}, {KVM_CAP_IRQCHIP, "IRQCHIP"},
        {KVM_CAP_IOEVENTFD, "IOEVENTFD"},     {KVM_CAP_IRQFD, "IRQFD"},
        {KVM_CAP_PIT2, "PIT2"},               {KVM_CAP_NR_VCPUS, "NR_VCPUS"},
        {KVM_CAP_MAX_VCPUS, "MAX_VCPUS"},     {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
        {KVM_CAP_EXT_CPUID, "EXT_CPUID"},     {KVM_CAP_TSC_DEADLINE_TIMER, "TSC_DEADLINE_TIMER"},
    };
    printf("kvmcheck: caps:");
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        printf(" %s=%d", caps[i].name, ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap));
    printf("\n");

    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
        printf("kvmcheck: note: KVM_SET_TSS_ADDR failed: %s\n", strerror(errno));

    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED) die("mmap guest RAM");
    memcpy(ram + CODE_GPA, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)ram,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
    printf("kvmcheck: VM with 1 vCPU, 64 KiB RAM, %zu code bytes at 0x%x (real mode)\n",
           sizeof code, CODE_GPA);

    int step = 0, halted = 0;
    alarm(60); // a stuck guest must not hang the test
    while (!halted && step < 16) {
        double t0 = now_us();
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) continue;
            die("KVM_RUN");
        }
        double dt = now_us() - t0;
        step++;
        printf("kvmcheck: exit %d: %s (%u) after %.0f us", step, exit_name(run->exit_reason),
               run->exit_reason, dt);
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            printf(" %s port 0x%x size %u count %u data 0x%02x", run->io.direction ? "out" : "in",
                   run->io.port, run->io.size, run->io.count, data[0]);
            if (data[0] >= 0x20 && data[0] < 0x7f) printf(" '%c'", data[0]);
            printf("\n");
            if (step == 1)
                expect(run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x3f8 &&
                           run->io.size == 1 && run->io.count == 1 && data[0] == 'A',
                       "out of 'A' to port 0x3f8");
            else
                expect(0, "unexpected IO exit");
            break;
        }
        case KVM_EXIT_MMIO:
            printf(" %s gpa 0x%llx len %u data 0x%02x\n", run->mmio.is_write ? "write" : "read",
                   (unsigned long long)run->mmio.phys_addr, run->mmio.len, run->mmio.data[0]);
            if (step == 2)
                expect(run->mmio.is_write && run->mmio.phys_addr == 0x20000 && run->mmio.len == 1 &&
                           run->mmio.data[0] == 0x42,
                       "MMIO write of 0x42 to 0x20000");
            else
                expect(0, "unexpected MMIO exit");
            break;
        case KVM_EXIT_HLT:
            printf("\n");
            expect(step == 3, "HLT as the third exit");
            halted = 1;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            printf(" hardware_entry_failure_reason 0x%llx\n",
                   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            expect(0, "entry failed");
            halted = 1;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            printf(" suberror %u\n", run->internal.suberror);
            expect(0, "internal error");
            halted = 1;
            break;
        default:
            printf("\n");
            expect(0, "unexpected exit");
            halted = 1;
            break;
        }
    }
    if (ioctl(vcpu, KVM_GET_REGS, &regs) == 0)
        printf("kvmcheck: final rip 0x%llx\n", (unsigned long long)regs.rip);
    if (!halted) expect(0, "guest halted within 16 exits");
    printf("kvmcheck: %s (%d exits, %d failures)\n", failures ? "FAIL" : "PASS", step, failures);
    return failures ? 1 : 0;
}
