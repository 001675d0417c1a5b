/* pio-loop: for each access size (1, 2, 4 bytes), 1000 times: write i to the probe's ECHO
 * port and check that reading it back gives i + 1 (the VMM's answer). Reports the number of
 * checked round trips and exits 0; exits 1 on the first wrong answer (reporting the value). */
#include "board.inc"
#define ROUNDS 1000
        .section .text.start
        .globl _start
_start:
        xor r12d, r12d                  /* checked round trips */
        mov dx, PROBE_PORT + PROBE_ECHO

        xor ecx, ecx                    /* size 1 */
1:      mov eax, ecx
        out dx, al
        in al, dx
        lea ebx, [ecx + 1]
        cmp al, bl
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 1b

        xor ecx, ecx                    /* size 2 */
2:      mov eax, ecx
        add eax, 0x7f00                 /* exercise the high byte too */
        out dx, ax
        in ax, dx
        lea ebx, [ecx + 0x7f01]
        cmp ax, bx
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 2b

        xor ecx, ecx                    /* size 4 */
4:      mov eax, ecx
        add eax, 0x12340000
        out dx, eax
        in eax, dx
        lea ebx, [ecx + 0x12340001]
        cmp eax, ebx
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 4b

        REPORT r12d
        EXIT 0
fail:   mov r13d, eax
        REPORT r13d
        EXIT 1
