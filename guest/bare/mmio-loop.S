/* mmio-loop: the MMIO twin of pio-loop, for sizes 1, 2, 4 and 8 bytes against the probe's
 * ECHO register at PROBE_MMIO. Reports the checked round trips and exits 0, or exits 1. */
#include "board.inc"
#define ROUNDS 1000
        .section .text.start
        .globl _start
_start:
        xor r12d, r12d
        mov rdi, PROBE_MMIO + PROBE_ECHO

        xor ecx, ecx                    /* size 1 */
1:      mov byte ptr [rdi], cl
        mov al, byte ptr [rdi]
        lea ebx, [ecx + 1]
        cmp al, bl
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 1b

        xor ecx, ecx                    /* size 2 */
2:      lea eax, [ecx + 0x7f00]
        mov word ptr [rdi], ax
        mov ax, word ptr [rdi]
        lea ebx, [ecx + 0x7f01]
        cmp ax, bx
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 2b

        xor ecx, ecx                    /* size 4 */
4:      lea eax, [ecx + 0x12340000]
        mov dword ptr [rdi], eax
        mov eax, dword ptr [rdi]
        lea ebx, [ecx + 0x12340001]
        cmp eax, ebx
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 4b

        xor ecx, ecx                    /* size 8 */
        movabs r8, 0x1122334400000000
8:      lea rax, [r8 + rcx]
        mov qword ptr [rdi], rax
        mov rax, qword ptr [rdi]
        lea rbx, [r8 + rcx + 1]
        cmp rax, rbx
        jne fail
        inc r12d
        inc ecx
        cmp ecx, ROUNDS
        jb 8b

        REPORT r12d
        EXIT 0
fail:   mov r13d, eax
        REPORT r13d
        EXIT 1
