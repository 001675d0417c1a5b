/* irqfd: takes 10 interrupts through the whole data path. Each round the guest rings the
 * interrupt doorbell (fast MMIO: KVM signals an ioeventfd, no exit), the VMM's I/O thread wakes
 * and signals an irqfd routed to MSI vector 0x40, and the guest waits in hlt until its handler
 * has counted the interrupt. Reports the count and exits 0. */
#include "board.inc"
#define ROUNDS 10
        .section .text.start
        .globl _start
_start:
        SET_GATE idt, IRQ_VECTOR, handler
        lidt [rip + idtr]

        /* Software-enable the LAPIC (SVR bit 8; spurious vector 0xff). Addresses above 2 GiB
         * do not fit a sign-extended disp32, so they live in registers. */
        mov r8, LAPIC_BASE
        mov r9, DOORBELL_IRQ
        mov dword ptr [r8 + LAPIC_SVR], 0x1ff

        xor r12d, r12d                               /* rounds done */
round:  mov r13d, dword ptr [rip + count]
        mov dword ptr [r9], 1                        /* ring */
wait:   cli
        cmp dword ptr [rip + count], r13d
        jne got
        sti
        hlt                                          /* woken by the interrupt */
        jmp wait
got:    inc r12d
        cmp r12d, ROUNDS
        jb round
        cli
        mov r13d, dword ptr [rip + count]
        REPORT r13d
        EXIT 0

handler:
        lock inc dword ptr [rip + count]
        mov dword ptr [r8 + LAPIC_EOI], 0
        iretq

        IDT_STORAGE
count:  .skip 4
