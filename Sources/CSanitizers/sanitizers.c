#include "sanitizers.h"

#include <stdatomic.h>
#include <stddef.h>

// From compiler-rt's sanitizer/common_interface_defs.h; every sanitizer runtime has it.
struct __sanitizer_sandbox_arguments;
extern void __sanitizer_sandbox_on_notify(struct __sanitizer_sandbox_arguments *args) __attribute__((weak));

void apus_sanitizers_before_sandbox(void) {
    // Once: a second call would read /proc/self/maps again, from a thread a filter may forbid
    // it to.
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&done)) return;
    // NULL arguments: the Linux runtimes ignore them (they matter on other systems only).
    if (__sanitizer_sandbox_on_notify) __sanitizer_sandbox_on_notify(NULL);
}
