// Hooks into the sanitizer runtimes, for the builds that have one (`make tsan`, the fuzzers).
//
// Every runtime entry point here is declared weak: in a build with `--sanitize=...` the runtime
// is linked in and they resolve; in any other build (debug, release) nothing defines them, they
// are null, and each hook is one predictable branch. A weak symbol rather than a compile
// condition (`-DAPUS_TSAN`) so that every sanitizer build gets them, a plain
// `swift test --sanitize=thread` included, with no flag to keep in step with the Makefile.
#ifndef APUS_SANITIZERS_H
#define APUS_SANITIZERS_H

// From compiler-rt's sanitizer/tsan_interface.h (which not every system has; the symbols are
// in every TSan runtime).
extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

/// Whether the TSan runtime is in this process.
static inline int apus_tsan_active(void) { return __tsan_acquire != 0 && __tsan_release != 0; }

/// Just after taking a lock keyed `addr`: for TSan, this thread now sees everything that
/// happened before the last `apus_tsan_release(addr)`.
static inline void apus_tsan_acquire(void *addr) {
    if (__tsan_acquire) __tsan_acquire(addr);
}

/// Just before dropping a lock keyed `addr`.
static inline void apus_tsan_release(void *addr) {
    if (__tsan_release) __tsan_release(addr);
}

/// Tells a sanitizer runtime, once per process, that its threads are about to be confined by
/// seccomp (`__sanitizer_sandbox_on_notify`, what Chromium calls before its sandbox): it reads
/// what it will need later while it still may, and TSan stops its background thread, which no
/// filter would confine. Call it before the process's first filter; does nothing without a
/// runtime.
void apus_sanitizers_before_sandbox(void);

#endif
