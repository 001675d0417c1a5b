/* triple-fault: loads an empty IDT and executes ud2. The #UD cannot be delivered (no IDT),
 * neither can the resulting #DF, so the CPU shuts down: KVM_EXIT_SHUTDOWN. */
#include "board.inc"
        .section .text.start
        .globl _start
_start:
        lidt [rip + empty_idt]
        ud2
        EXIT 99                 /* never reached */

        .section .rodata
empty_idt: .word 0
           .quad 0
