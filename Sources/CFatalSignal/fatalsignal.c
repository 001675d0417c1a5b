// The fatal-signal handler: restore the terminal, say why in one line, die of the same signal.
// Everything reachable from `on_fatal` is async-signal-safe: it may interrupt malloc, hold no
// lock and call nothing that a seccomp filter refuses (see Machine/SyscallAllowList.swift: every
// thread kind allows ioctl TCSETS on descriptors 0-2, write, getpid, gettid, tgkill to apus,
// clock_nanosleep and exit_group) — except getppid, which is on no list on purpose.
#define _GNU_SOURCE
#include "cfatalsignal.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1  // si_code of a SIGSYS raised by a seccomp filter's SECCOMP_RET_TRAP
#endif

// MARK: The terminal

static struct termios saved_settings;
static int saved_fd = -1;
// Set only after saved_settings and saved_fd are complete: a handler that sees 1 reads a whole
// copy.
static atomic_int remembered;

void apus_fatal_remember_terminal(int fd, const struct termios *settings) {
    atomic_store(&remembered, 0);
    saved_settings = *settings;
    saved_fd = fd;
    atomic_store(&remembered, 1);
}

void apus_fatal_forget_terminal(void) { atomic_store(&remembered, 0); }

// The kernel's struct termios (asm-generic/termbits.h), which TCSETS takes: glibc's shares its
// first fields, then has a longer c_cc and the speeds.
struct kernel_termios {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line;
    cc_t c_cc[19];
};

int apus_terminal_apply(int fd, const struct termios *settings) {
    struct kernel_termios k;
    k.c_iflag = settings->c_iflag;
    k.c_oflag = settings->c_oflag;
    k.c_cflag = settings->c_cflag;  // the speed bits live here too
    k.c_lflag = settings->c_lflag;
    k.c_line = settings->c_line;
    memcpy(k.c_cc, settings->c_cc, sizeof k.c_cc);
    return (int)syscall(SYS_ioctl, (long)fd, (long)TCSETS, &k);
}

int apus_fatal_restore_terminal(void) {
    if (!atomic_load(&remembered)) return 0;
    return apus_terminal_apply(saved_fd, &saved_settings) == 0 ? 1 : -1;
}

// MARK: Labels for the report

enum { NAME_SLOTS = 512, NAME_LENGTH = 32, LABEL_LENGTH = 64 };
static char syscall_names[NAME_SLOTS][NAME_LENGTH];
static __thread char thread_label[LABEL_LENGTH];
static __thread int thread_confined;

void apus_fatal_mark_thread_confined(void) { thread_confined = 1; }

static void copy_cut(char *to, size_t size, const char *from) {
    size_t n = strlen(from);
    if (n >= size) n = size - 1;
    memcpy(to, from, n);
    to[n] = 0;
}

void apus_fatal_name_syscall(int number, const char *name) {
    if (number < 0 || number >= NAME_SLOTS || name == NULL) return;
    copy_cut(syscall_names[number], NAME_LENGTH, name);
}

void apus_fatal_label_thread(const char *label) { copy_cut(thread_label, LABEL_LENGTH, label ? label : ""); }

// A line built in a stack buffer: no stdio, no allocation.
struct line { char text[256]; size_t length; };

static void put(struct line *l, const char *s) {
    while (*s && l->length < sizeof l->text - 1) l->text[l->length++] = *s++;
}

static void put_number(struct line *l, long value) {
    char digits[24];
    int n = 0;
    unsigned long v = value < 0 ? (unsigned long)-value : (unsigned long)value;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < (int)sizeof digits);
    if (value < 0) put(l, "-");
    while (n > 0) { char c[2] = { digits[--n], 0 }; put(l, c); }
}

static void emit(struct line *l) {
    put(l, "\n");
    size_t done = 0;
    while (done < l->length) {
        ssize_t n = write(2, l->text + done, l->length - done);
        if (n <= 0 && errno != EINTR) return;
        if (n > 0) done += (size_t)n;
    }
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGSEGV: return "SIGSEGV";
    case SIGSYS: return "SIGSYS";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGALRM: return "SIGALRM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGIO: return "SIGIO";
    case SIGSTKFLT: return "SIGSTKFLT";
    case SIGPWR: return "SIGPWR";
    default: return "a fatal signal";
    }
}

static void put_thread(struct line *l) {
    if (thread_label[0]) { put(l, " in thread "); put(l, thread_label); }
}

// MARK: The handler

// Every signal whose default action ends the process, except SIGINT, SIGTERM and SIGHUP (the
// signal watcher turns those into a clean stop) and SIGKILL and SIGSTOP (no handler can run).
static const int fatal_signals[] = {
    SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS, SIGXCPU, SIGXFSZ,
    SIGALRM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGPROF, SIGIO, SIGSTKFLT, SIGPWR,
};
static struct sigaction previous[NSIG];

// Sends `sig` to this thread again; it is blocked inside the handler and our handler is gone
// (SA_RESETHAND), so it kills the process by its default action once the handler returns.
static void raise_again(int sig) {
    syscall(SYS_tgkill, (long)getpid(), (long)syscall(SYS_gettid), (long)sig);
}

// SIGSYS keeps its handler (no SA_RESETHAND: a second thread's violation must not kill the
// process before the first has restored the terminal and said why), so it needs another way to
// die by its default action.
static void die_of_sigsys(void) {
    // On a confined thread, with SIGSYS blocked (it is, inside its handler): a call on no list.
    // The kernel then resets SIGSYS to its default and kills the process with it.
    syscall(SYS_getppid);
    // Not confined (a SIGSYS sent from outside, or --seccomp off): the ordinary way.
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    if (sigaction(SIGSYS, &default_action, NULL) == 0) {
        raise_again(SIGSYS);  // delivered once the handler returns and SIGSYS is unblocked
        return;
    }
    syscall(SYS_exit_group, 128L + SIGSYS);
}

// The first thread to take a fatal signal reports it and ends the process; a thread that takes
// one meanwhile (its handler still installed: SIGSYS, or another signal) waits for that end.
static atomic_int dying;
static __thread int handling;

static void wait_for_the_end(void) {
    struct timespec second = { 1, 0 };
    for (;;) nanosleep(&second, NULL);
}

static void on_fatal(int sig, siginfo_t *info, void *context) {
    // A fatal signal inside this handler: end now, by the shortest way.
    if (handling) syscall(SYS_exit_group, 128L + sig);
    handling = 1;
    if (atomic_exchange(&dying, 1)) wait_for_the_end();

    int saved_errno = errno;
    int restored = apus_fatal_restore_terminal();
    int from_seccomp = sig == SIGSYS && info != NULL && info->si_code == SYS_SECCOMP;
    const struct sigaction *before = &previous[sig];
    int before_is_handler = (before->sa_flags & SA_SIGINFO) ? before->sa_sigaction != NULL
        : (before->sa_handler != SIG_DFL && before->sa_handler != SIG_IGN);

    struct line l = { .length = 0 };
    if (from_seccomp) {
        int nr = info->si_syscall;
        put(&l, "apus: seccomp: forbidden system call ");
        if (nr >= 0 && nr < NAME_SLOTS && syscall_names[nr][0]) { put(&l, syscall_names[nr]); put(&l, " "); }
        put(&l, "("); put_number(&l, nr); put(&l, ")");
        put_thread(&l);
        put(&l, "; apus stops (SIGSYS)");
        if (restored == 1) put(&l, ", terminal restored");
        emit(&l);
    } else if (!thread_confined && before_is_handler) {
        // The Swift runtime's backtracer reports the crash, on a terminal that works again.
        if (before->sa_flags & SA_SIGINFO) before->sa_sigaction(sig, info, context);
        else before->sa_handler(sig);
    } else {
        put(&l, "apus: "); put(&l, signal_name(sig));
        put_thread(&l);
        if (restored == 1) put(&l, "; terminal restored");
        emit(&l);
    }
    if (sig == SIGSYS) {
        die_of_sigsys();
    } else if (info == NULL || info->si_code <= 0) {
        // A signal that was sent (kill, abort) must be sent again; a fault recurs by itself
        // when the faulting instruction runs again on return.
        raise_again(sig);
    }
    errno = saved_errno;
}

static void restore_at_exit(void) { (void)apus_fatal_restore_terminal(); }

int apus_fatal_install_handlers(void) {
    static atomic_int installed;
    if (atomic_exchange(&installed, 1)) return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fatal;
    // Nothing else interrupts the restore, except a fault in the handler itself (a blocked
    // fault would kill the process without a word).
    sigfillset(&action.sa_mask);
    const int faults[] = { SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGSYS };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&action.sa_mask, faults[i]);
    // SA_RESETHAND: once in the handler the default action is back, so the death that follows
    // is the default one (exit status 128+N, a core dump where enabled). SA_ONSTACK: a stack
    // overflow still reaches the handler on a thread with an alternate stack.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    // SIGSYS keeps its handler and is blocked inside it (see die_of_sigsys).
    struct sigaction sigsys_action = action;
    sigaddset(&sigsys_action.sa_mask, SIGSYS);
    sigsys_action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        int sig = fatal_signals[i];
        struct sigaction current;
        if (sigaction(sig, NULL, &current) != 0) return -1;
        if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) continue;  // apus ignores it
        previous[sig] = current;
        if (sigaction(sig, sig == SIGSYS ? &sigsys_action : &action, NULL) != 0) return -1;
    }
    if (atexit(restore_at_exit) != 0) return -1;
    return 0;
}
