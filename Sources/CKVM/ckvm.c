// The one function that needs _GNU_SOURCE; everything else in CKVM is header-only.
#define _GNU_SOURCE
#include <pthread.h>
#include "ckvm.h"

int apus_set_thread_name(pthread_t thread, const char *name) {
    return pthread_setname_np(thread, name);
}

#include <fcntl.h>
int apus_fallocate(int fd, int mode, long long offset, long long length) {
    return fallocate(fd, mode, offset, length);
}

#include <sys/socket.h>
int apus_accept_nonblocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#include <malloc.h>
#include <limits.h>
int apus_disable_heap_trimming(void) {
    return mallopt(M_TRIM_THRESHOLD, INT_MAX);
}
