// CFatalSignal: what runs when apus dies of a signal — a crash, an abort, a forbidden system
// call under seccomp, a `kill -QUIT` — so that the terminal never stays in raw mode and the one
// line on stderr says why.
//
// This lives in C because it runs inside signal handlers: only async-signal-safe calls
// (ioctl TCSETS, write, getpid, gettid, tgkill) and no allocation, no locks, no Swift runtime.
// LinuxSupport's `FatalSignals` and `RawTerminal` are the Swift face of it.
#ifndef APUS_CFATALSIGNAL_H
#define APUS_CFATALSIGNAL_H

#include <termios.h>

// Sets terminal `fd` to `settings` now (tcsetattr with TCSANOW) in exactly one system call,
// ioctl(fd, TCSETS): glibc's tcsetattr adds TCGETS calls around it, and newer versions use
// TCSETS2, which the seccomp allow-lists do not have. Async-signal-safe. Returns 0 or -1.
int apus_terminal_apply(int fd, const struct termios *settings);

// Remembers `settings` as what terminal `fd` must get back if apus dies (it is in raw mode now).
void apus_fatal_remember_terminal(int fd, const struct termios *settings);
// Forgets the terminal: it was restored the ordinary way.
void apus_fatal_forget_terminal(void);
// Puts the remembered settings back now. Async-signal-safe. Returns 1 if it restored them, 0 if
// nothing was remembered, -1 if tcsetattr failed.
int apus_fatal_restore_terminal(void);

// Installs the handler for every signal whose default action ends the process (SIGSEGV, SIGBUS,
// SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGQUIT, …), except those set to SIG_IGN, and an
// atexit hook that restores the terminal too. Idempotent. Returns 0, or -1 with errno.
int apus_fatal_install_handlers(void);
// Marks the calling thread as running under seccomp. A fatal signal on an unmarked thread is
// passed on, after the terminal is restored, to the handler installed before (the Swift
// runtime's backtracer); on a marked thread it is not: the backtracer starts a helper process,
// which no filter allows, so it would report a forbidden clone instead of the crash.
void apus_fatal_mark_thread_confined(void);

// Names system call `number` for the seccomp report (the handler cannot look names up: that
// allocates). Names are cut to 31 bytes; numbers past 511 are ignored.
void apus_fatal_name_syscall(int number, const char *name);
// Labels the calling thread in reports, e.g. "apus-vcpu0 (vcpu filter)"; cut to 63 bytes.
void apus_fatal_label_thread(const char *label);

#endif
