/* smp: every vCPU reports its LAPIC ID (from the in-kernel LAPIC's ID register) and, with 0x100
 * added, the initial APIC ID from CPUID leaf 1, then checks in. vCPU 0 waits until all RSI vCPUs
 * have checked in and exits 0; the others halt. */
#include "board.inc"
        .section .text.start
        .globl _start
_start:
        mov r14, rsi                                 /* vCPU count */
        mov r15, rdi                                 /* vCPU index */
        mov r8, LAPIC_BASE                           /* above 2 GiB: no disp32 */
        mov r12d, dword ptr [r8 + LAPIC_ID]
        shr r12d, 24
        REPORT r12d
        mov eax, 1
        cpuid
        shr ebx, 24
        lea r13d, [ebx + 0x100]
        REPORT r13d
        lock inc dword ptr [rip + arrived]
        test r15, r15
        jnz park
wait:   pause
        cmp dword ptr [rip + arrived], r14d
        jb wait
        EXIT 0
park:   cli
        hlt
        jmp park

        .section .bss
arrived: .skip 4
