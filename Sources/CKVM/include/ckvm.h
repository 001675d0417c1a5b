// CKVM: the C headers Apus needs, and nothing else.
//
// Swift's importer cannot see function-like macros such as KVM_RUN (built from _IO/_IOW/_IOR),
// and cannot call the variadic ioctl(2). This header re-exports each request number as a
// constant function and offers non-variadic ioctl wrappers. No logic lives here.
#ifndef APUS_CKVM_H
#define APUS_CKVM_H


#include <linux/kvm.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <signal.h>
#include <pthread.h>
#include <termios.h>
#include <errno.h>
#include <sys/random.h>

// ioctl(2) with a pointer argument.
static inline int apus_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}
// ioctl(2) with an integer argument (KVM_CREATE_VCPU, KVM_CHECK_EXTENSION, ...).
static inline int apus_ioctl_int(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}
static inline int apus_errno(void) { return errno; }
// pthread_setname_np needs _GNU_SOURCE, which must not leak into this header: it would change
// glibc's type definitions under Swift's Glibc module. So it lives in ckvm.c.
int apus_set_thread_name(pthread_t thread, const char *name);
// fallocate(2) also needs _GNU_SOURCE.
int apus_fallocate(int fd, int mode, long long offset, long long length);
// mallopt(M_TRIM_THRESHOLD): <malloc.h> is not in Swift's Glibc module.
int apus_disable_heap_trimming(void);
// accept4(2) too: a connection that is nonblocking and close-on-exec from the start.
int apus_accept_nonblocking(int fd);

#define APUS_IOCTL(name) static inline unsigned long APUS_##name(void) { return name; }
// System ioctls (on the /dev/kvm fd).
APUS_IOCTL(KVM_GET_API_VERSION)
APUS_IOCTL(KVM_CREATE_VM)
APUS_IOCTL(KVM_CHECK_EXTENSION)
APUS_IOCTL(KVM_GET_VCPU_MMAP_SIZE)
APUS_IOCTL(KVM_GET_SUPPORTED_CPUID)
APUS_IOCTL(KVM_GET_MSR_INDEX_LIST)
// VM ioctls.
APUS_IOCTL(KVM_CREATE_VCPU)
APUS_IOCTL(KVM_SET_USER_MEMORY_REGION)
APUS_IOCTL(KVM_SET_TSS_ADDR)
APUS_IOCTL(KVM_SET_IDENTITY_MAP_ADDR)
APUS_IOCTL(KVM_CREATE_IRQCHIP)
APUS_IOCTL(KVM_CREATE_PIT2)
APUS_IOCTL(KVM_IRQ_LINE)
APUS_IOCTL(KVM_IOEVENTFD)
APUS_IOCTL(KVM_IRQFD)
APUS_IOCTL(KVM_SET_GSI_ROUTING)
APUS_IOCTL(KVM_SIGNAL_MSI)
// vCPU ioctls.
APUS_IOCTL(KVM_RUN)
APUS_IOCTL(KVM_GET_REGS)
APUS_IOCTL(KVM_SET_REGS)
APUS_IOCTL(KVM_GET_SREGS)
APUS_IOCTL(KVM_SET_SREGS)
APUS_IOCTL(KVM_SET_CPUID2)
APUS_IOCTL(KVM_GET_MSRS)
APUS_IOCTL(KVM_SET_MSRS)
APUS_IOCTL(KVM_GET_FPU)
APUS_IOCTL(KVM_SET_FPU)
APUS_IOCTL(KVM_GET_LAPIC)
APUS_IOCTL(KVM_SET_LAPIC)
APUS_IOCTL(KVM_GET_MP_STATE)
APUS_IOCTL(KVM_SET_MP_STATE)
#undef APUS_IOCTL

#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"
// struct kvm_cpuid2 and kvm_msrs end in flexible arrays; Swift cannot size them, so these
// fixed-capacity twins share their layout (the header fields, then the entries).
#define APUS_MAX_CPUID_ENTRIES 256
struct apus_cpuid {
    struct kvm_cpuid2 header;
    struct kvm_cpuid_entry2 entries[APUS_MAX_CPUID_ENTRIES];
};
#define APUS_MAX_MSR_ENTRIES 32
struct apus_msrs {
    struct kvm_msrs header;
    struct kvm_msr_entry entries[APUS_MAX_MSR_ENTRIES];
};
#define APUS_MAX_IRQ_ROUTES 1024
struct apus_irq_routing {
    struct kvm_irq_routing header;
    struct kvm_irq_routing_entry entries[APUS_MAX_IRQ_ROUTES];
};

// Accessors for anonymous unions Swift cannot name portably.
static inline void apus_route_set_irqchip(struct kvm_irq_routing_entry *e, unsigned chip, unsigned pin) {
    e->type = KVM_IRQ_ROUTING_IRQCHIP; e->u.irqchip.irqchip = chip; e->u.irqchip.pin = pin;
}
static inline void apus_route_set_msi(struct kvm_irq_routing_entry *e, unsigned lo, unsigned hi, unsigned data) {
    e->type = KVM_IRQ_ROUTING_MSI; e->u.msi.address_lo = lo; e->u.msi.address_hi = hi; e->u.msi.data = data;
}

// kvm_run.mmio.data lives inside an anonymous union, which Swift imports as computed
// properties (no stable address); C knows where it is.
static inline unsigned char *apus_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }

// kvm_run.immediate_exit is written by the thread that kicks a vCPU and by the vCPU's own thread:
// atomic stores, so neither is a data race (the kernel reads it on entry to KVM_RUN).
static inline void apus_run_set_immediate_exit(struct kvm_run *run, unsigned char value) {
    __atomic_store_n(&run->immediate_exit, value, __ATOMIC_RELEASE);
}

// Open-file-description locks (fcntl F_OFD_*), the kind QEMU takes on disk images: unlike
// flock(2) locks they conflict with QEMU's, and unlike classic POSIX locks they belong to the
// open file, not the process. (Values from <linux/fcntl.h>; glibc hides them without _GNU_SOURCE.)
#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif
// Takes a lock of `type` (F_RDLCK, F_WRLCK) on [start, start + len) (len 0: to the end); 0 or -1.
static inline int apus_ofd_lock(int fd, short type, long start, long len) {
    struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    return fcntl(fd, F_OFD_SETLK, &l);
}
// 1 if another open file holds a lock that conflicts with `type` on the range, 0 if not, -1 on error.
static inline int apus_ofd_conflict(int fd, short type, long start, long len) {
    struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    if (fcntl(fd, F_OFD_GETLK, &l) != 0) return -1;
    return l.l_type != F_UNLCK;
}

// BLKGETSIZE64: the size in bytes of a block device (a disk image that is a device node).
static inline unsigned long apus_blkgetsize64(void) { return BLKGETSIZE64; }

// Tap devices (<linux/if_tun.h>): the request numbers are macros, so, as for KVM, constants.
// struct ifreq needs <net/if.h>, which Swift's Glibc module does not export; these helpers fill
// it in C. Each returns what ioctl(2) returns (-1 with errno set).
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
static inline unsigned long apus_tunsetoffload(void) { return TUNSETOFFLOAD; }
static inline unsigned long apus_tunsetvnethdrsz(void) { return TUNSETVNETHDRSZ; }
// TUNSETIFF: attach `fd` (an open /dev/net/tun) to tap `name` with `flags` (IFF_TAP | ...),
// creating it when it does not exist; the kernel's name for it is copied back into `name`
// (IFNAMSIZ bytes).
static inline int apus_tun_set_iff(int fd, char *name, short flags) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = flags;
    int r = ioctl(fd, TUNSETIFF, &ifr);
    if (r == 0) memcpy(name, ifr.ifr_name, IFNAMSIZ);
    return r;
}
// TUNSETQUEUE: on a multi-queue tap, let this queue take frames (attach) or not (detach).
static inline int apus_tun_set_queue(int fd, int attach) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
    return ioctl(fd, TUNSETQUEUE, &ifr);
}
static inline unsigned long apus_tunsetqueue(void) { return TUNSETQUEUE; }
// The MTU of interface `name` (SIOCGIFMTU through any socket `sock`), or -1.
static inline int apus_interface_mtu(int sock, const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFMTU, &ifr) != 0) return -1;
    return ifr.ifr_mtu;
}

// vhost-net (<linux/vhost.h>): the kernel carries virtio-net's rings between guest memory and a
// tap. Typed wrappers, since the request numbers are macros and the structures have unions or
// flexible arrays. Each returns what ioctl(2) returns.
#include <linux/vhost.h>
static inline int apus_vhost_set_owner(int fd) { return ioctl(fd, VHOST_SET_OWNER); }
static inline int apus_vhost_get_features(int fd, unsigned long long *features) {
    __u64 f = 0; int r = ioctl(fd, VHOST_GET_FEATURES, &f); *features = f; return r;
}
static inline int apus_vhost_set_features(int fd, unsigned long long features) {
    __u64 f = features; return ioctl(fd, VHOST_SET_FEATURES, &f);
}
#define APUS_VHOST_MAX_REGIONS 8
// The guest's RAM as (guest-physical address, size, address in this process) triples.
static inline int apus_vhost_set_mem_table(int fd, unsigned count, const unsigned long long *guest,
                                           const unsigned long long *size, const unsigned long long *user) {
    struct { struct vhost_memory header; struct vhost_memory_region regions[APUS_VHOST_MAX_REGIONS]; } table;
    if (count > APUS_VHOST_MAX_REGIONS) { errno = E2BIG; return -1; }
    memset(&table, 0, sizeof table);
    table.header.nregions = count;
    for (unsigned i = 0; i < count; i++) {
        table.regions[i].guest_phys_addr = guest[i];
        table.regions[i].memory_size = size[i];
        table.regions[i].userspace_addr = user[i];
    }
    return ioctl(fd, VHOST_SET_MEM_TABLE, &table);
}
static inline int apus_vhost_set_vring_num(int fd, unsigned index, unsigned num) {
    struct vhost_vring_state s = { .index = index, .num = num }; return ioctl(fd, VHOST_SET_VRING_NUM, &s);
}
static inline int apus_vhost_set_vring_base(int fd, unsigned index, unsigned base) {
    struct vhost_vring_state s = { .index = index, .num = base }; return ioctl(fd, VHOST_SET_VRING_BASE, &s);
}
static inline int apus_vhost_set_vring_addr(int fd, unsigned index, unsigned long long desc,
                                            unsigned long long avail, unsigned long long used) {
    struct vhost_vring_addr a = { .index = index, .desc_user_addr = desc, .avail_user_addr = avail, .used_user_addr = used };
    return ioctl(fd, VHOST_SET_VRING_ADDR, &a);
}
static inline int apus_vhost_set_vring_kick(int fd, unsigned index, int eventfd) {
    struct vhost_vring_file f = { .index = index, .fd = eventfd }; return ioctl(fd, VHOST_SET_VRING_KICK, &f);
}
static inline int apus_vhost_set_vring_call(int fd, unsigned index, int eventfd) {
    struct vhost_vring_file f = { .index = index, .fd = eventfd }; return ioctl(fd, VHOST_SET_VRING_CALL, &f);
}
// Attaches (tap fd) or detaches (-1) the backend of ring `index`; detaching waits for the
// kernel to finish with the ring.
static inline int apus_vhost_net_set_backend(int fd, unsigned index, int backend) {
    struct vhost_vring_file f = { .index = index, .fd = backend }; return ioctl(fd, VHOST_NET_SET_BACKEND, &f);
}
// Request numbers, for the seccomp allow-list.
static inline unsigned long apus_vhost_request_set_features(void) { return VHOST_SET_FEATURES; }
static inline unsigned long apus_vhost_request_set_mem_table(void) { return VHOST_SET_MEM_TABLE; }
static inline unsigned long apus_vhost_request_set_vring_num(void) { return VHOST_SET_VRING_NUM; }
static inline unsigned long apus_vhost_request_set_vring_base(void) { return VHOST_SET_VRING_BASE; }
static inline unsigned long apus_vhost_request_set_vring_addr(void) { return VHOST_SET_VRING_ADDR; }
static inline unsigned long apus_vhost_request_set_vring_kick(void) { return VHOST_SET_VRING_KICK; }
static inline unsigned long apus_vhost_request_set_vring_call(void) { return VHOST_SET_VRING_CALL; }
static inline unsigned long apus_vhost_request_net_set_backend(void) { return VHOST_NET_SET_BACKEND; }

// The signal Apus uses to kick a vCPU thread out of KVM_RUN (see LinuxSupport/ThreadKick).
static inline int apus_kick_signal(void) { return SIGRTMIN + 1; }

#endif
