/* hello: prints a greeting on COM1 and exits with status 0. */
#include "board.inc"
        .section .text.start
        .globl _start
_start:
        lea rsi, [rip + message]
        mov dx, COM1
next:   lodsb                   /* al = *rsi++ */
        test al, al
        jz done
        out dx, al              /* one PIO exit per byte: the serial THR */
        jmp next
done:   EXIT 0

        .section .rodata
message: .asciz "Hello from the Apus bare-metal guest!\n"
