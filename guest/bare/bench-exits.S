/* bench-exits: times each kind of guest access with the TSC, the kvm-unit-tests way.
 *
 * Parameters (written by the VMM into guest memory before start, BENCH_PARAMS):
 *   +0  iterations per measurement      +8  repetitions
 * For each repetition and each kind below, in this order, the guest executes the access
 * `iterations` times between two serialized rdtsc reads and reports the cycle count with an
 * 8-byte write to the MMIO probe's REPORT register (outside the timed region). Then exits 0.
 *
 *   0 no-exit loop (the floor)        5 MMIO read, handled in userspace
 *   1 cpuid (exit handled in KVM)     6 PIO write to an ioeventfd
 *   2 PIO write, handled in userspace 7 MMIO write to an ioeventfd (length 4)
 *   3 PIO read, handled in userspace  8 MMIO write to an ioeventfd (length 4, datamatch)
 *   4 MMIO write, handled in userspace 9 MMIO write to a fast-MMIO ioeventfd (length 0)
 * Keep the order in step with ExitBenchmark.Kind (Sources/Machine/ExitBenchmark.swift). */
#include "board.inc"
#define BENCH_PARAMS 0x6000

        .section .text.start
        .globl _start
_start:
        mov r15, qword ptr [BENCH_PARAMS]        /* iterations */
        mov r14, qword ptr [BENCH_PARAMS + 8]    /* repetitions */
        mov r13, PROBE_MMIO
        mov r8, DOORBELL_MMIO
        mov r9, DOORBELL_MATCH
        mov r10, DOORBELL_FAST

/* Times `body` run r15 times; reports the cycles. Uses r11 (count) and r12 (start). */
.macro MEASURE body:vararg
        lfence
        rdtsc
        shl rdx, 32
        or rax, rdx
        mov r12, rax
        mov r11, r15
77:     \body
        dec r11
        jnz 77b
        lfence
        rdtsc
        shl rdx, 32
        or rax, rdx
        sub rax, r12
        mov qword ptr [r13 + PROBE_REPORT], rax
.endm

repeat:
        MEASURE nop
        MEASURE xor eax, eax; cpuid
        MEASURE mov dx, PROBE_PORT + PROBE_NULL; out dx, al
        MEASURE mov dx, PROBE_PORT + PROBE_NULL; in al, dx
        MEASURE mov dword ptr [r13 + PROBE_NULL], eax
        MEASURE mov eax, dword ptr [r13 + PROBE_NULL]
        MEASURE mov dx, DOORBELL_PORT; out dx, eax
        MEASURE mov dword ptr [r8], eax
        MEASURE mov dword ptr [r9], 1
        MEASURE mov dword ptr [r10], eax
        dec r14
        jnz repeat
        EXIT 0
