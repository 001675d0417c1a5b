/* hostile-uart: floods and garbles COM1, Apus's 16550A (Sources/Devices/Serial8250.swift).
 *
 * In loopback mode (MCR bit 4) a 16550 feeds what is written to THR straight back into its own
 * receive FIFO: a guest can write as fast as it can exit, forever, and nothing drains the
 * FIFO. A UART model that queued those bytes without bound would let a guest grow the VMM's
 * memory at will; Apus's FIFO is 16 bytes, as on the chip, and the 17th byte is an overrun.
 * With THR-empty interrupts on, every byte written outside loopback drops and raises the
 * interrupt line — a storm of IRQ line changes for KVM.
 *
 * Exit status: 0 when the UART survived it all and printed the final line; otherwise the step:
 *   1  loopback: 16 bytes come back in order, and nothing is left after them
 *   2  17 bytes: the first 16 come back, LSR reports the overrun once (reading LSR clears it)
 *   3  the flood: 100000 THR writes and 64 KiB of `rep outsb` in loopback, with every
 *      interrupt enabled, then 4096 reads of RBR by `rep insb`: the FIFO holds at most 16
 *      bytes, and the interrupt line stays low (loopback disconnects it)
 *   4  register garbage: every COM1 port read and written (all ones, 0xA5, zero) with 1, 2
 *      and 4 bytes, in loopback; afterwards LCR, MCR and IER read back what is written
 *   5  the line storm: 4000 '.' written with THR-empty interrupts on (the console gets them)
 * Then it prints "hostile-uart: alive\n" and exits 0. Loopback bytes never reach the console,
 * so the console must read exactly 4000 dots and that line. */
#include "board.inc"

#define THR     (COM1 + 0)      /* write: transmit; read: RBR, the receive FIFO */
#define IER     (COM1 + 1)
#define FCR     (COM1 + 2)      /* write: FIFO control; read: IIR */
#define LCR     (COM1 + 3)
#define MCR     (COM1 + 4)
#define LSR     (COM1 + 5)
#define SCR     (COM1 + 7)
#define MCR_OUT2        0x08
#define MCR_LOOP        0x10
#define LSR_DR          0x01    /* data ready */
#define LSR_OE          0x02    /* overrun */
#define LSR_THRE        0x20
#define STORM           4000

/* OUTB port, value / INB port: one byte to or from a COM1 register (al). */
.macro OUTB port, value
        mov dx, \port
        mov al, \value
        out dx, al
.endm
.macro INB port
        mov dx, \port
        in al, dx
.endm

        .section .text.start
        .globl _start
_start:
        cld
        OUTB LCR, 0x03                          /* 8N1, DLAB off */
        OUTB FCR, 0x07                          /* FIFO on, both FIFOs cleared */
        OUTB IER, 0
        OUTB MCR, MCR_OUT2|MCR_LOOP

/* ---- 1. Loopback: 16 bytes round trip. ---------------------------------------------------- */
        mov r15d, 1
        mov bl, 'A'
1:      OUTB THR, bl
        inc bl
        cmp bl, 'A' + 16
        jb 1b
        mov bl, 'A'
2:      INB LSR
        test al, LSR_DR
        jz fail
        INB THR
        cmp al, bl
        jne fail
        inc bl
        cmp bl, 'A' + 16
        jb 2b
        INB LSR
        test al, LSR_DR | LSR_OE                /* empty, and no overrun */
        jnz fail

/* ---- 2. The 17th byte is an overrun. ------------------------------------------------------ */
        mov r15d, 2
        mov bl, 'a'
1:      OUTB THR, bl
        inc bl
        cmp bl, 'a' + 17
        jb 1b
        INB LSR
        test al, LSR_OE
        jz fail
        INB LSR                                 /* reported once */
        test al, LSR_OE
        jnz fail
        mov bl, 'a'
2:      INB THR
        cmp al, bl
        jne fail
        inc bl
        cmp bl, 'a' + 16                        /* the 17th was lost */
        jb 2b
        INB LSR
        test al, LSR_DR
        jnz fail

/* ---- 3. The flood. ------------------------------------------------------------------------ */
        mov r15d, 3
        OUTB IER, 0x0f                          /* every interrupt on: the line must stay low */
        mov ecx, 100000
        mov dx, THR
1:      mov al, cl
        out dx, al
        dec ecx
        jnz 1b
        mov r12d, 16                            /* 16 x 4 KiB of string output: a few exits each */
2:      lea rsi, [rip + _start]
        mov ecx, 4096
        mov dx, THR
        rep outsb
        dec r12d
        jnz 2b
        xor ebx, ebx                            /* drain: exactly 16 bytes, then empty */
3:      INB LSR
        test al, LSR_DR
        jz 4f
        INB THR
        inc ebx
        cmp ebx, 17
        jb 3b
        jmp fail
4:      cmp ebx, 16
        jne fail
        lea rdi, [rip + sink]                   /* reads of an empty FIFO, by the page */
        mov ecx, 4096
        mov dx, THR
        rep insb
        OUTB IER, 0

/* ---- 4. Register garbage. ----------------------------------------------------------------- */
        mov r15d, 4
        mov ebx, COM1
1:      mov edx, ebx
        in al, dx
        in ax, dx
        in eax, dx
        cmp ebx, MCR                            /* MCR garbage would leave loopback: below */
        je 2f
        mov al, 0xff
        out dx, al
        mov al, 0xa5
        out dx, al
        xor eax, eax
        out dx, al
        mov ax, 0xffff
        out dx, ax
        mov ax, 0xa5a5
        out dx, ax
        xor eax, eax
        out dx, ax
        mov eax, 0xffffffff
        out dx, eax
        mov eax, 0xa5a5a5a5
        out dx, eax
        xor eax, eax
        out dx, eax
2:      inc ebx
        cmp ebx, COM1 + 8
        jb 1b
        /* MCR with every value, loopback kept on (bit 4) so THR writes stay inside. */
        xor ebx, ebx
3:      mov al, bl
        or al, MCR_LOOP
        mov dx, MCR
        out dx, al
        OUTB THR, bl
        inc ebx
        cmp ebx, 256
        jb 3b
        OUTB FCR, 0x07
        OUTB LCR, 0x03
        OUTB IER, 0x05
        OUTB MCR, MCR_OUT2|MCR_LOOP
        INB LCR
        cmp al, 0x03
        jne fail
        INB IER
        cmp al, 0x05
        jne fail
        INB MCR
        cmp al, MCR_OUT2 | MCR_LOOP
        jne fail
        OUTB IER, 0
        OUTB MCR, MCR_OUT2                      /* loopback off: from here on bytes go out */

/* ---- 5. The line storm. ------------------------------------------------------------------- */
        mov r15d, 5
        OUTB IER, 0x02                          /* THR empty */
        mov ecx, STORM
1:      mov dx, LSR
        in al, dx
        test al, LSR_THRE
        jz fail                                 /* the transmitter is never busy in Apus */
        mov dx, THR
        mov al, '.'
        out dx, al
        mov dx, FCR                             /* IIR: acknowledges THR empty */
        in al, dx
        dec ecx
        jnz 1b
        OUTB IER, 0

/* ---- Still a UART. ------------------------------------------------------------------------ */
        lea rsi, [rip + alive]
1:      lodsb
        test al, al
        jz 2f
        mov bl, al
        OUTB THR, bl
        jmp 1b
2:      EXIT 0

fail:
        mov eax, r15d
        mov dx, DEBUG_EXIT
        out dx, al
1:      jmp 1b

        .section .rodata
alive:  .asciz "hostile-uart: alive\n"
        .section .bss
sink:   .skip 4096
