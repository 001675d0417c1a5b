/* exit-forever: writes to the probe's null register forever, so the exit counters keep
 * growing until the machine is stopped from outside (control socket tests: live stats,
 * pause and resume). */
#include "board.inc"
        .section .text.start
        .globl _start
_start:
        mov dx, PROBE_PORT + PROBE_NULL
1:      out dx, al
        jmp 1b
