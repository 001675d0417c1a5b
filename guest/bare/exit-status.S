/* exit-status: exits with status 3, to prove the status reaches apus's caller. */
#include "board.inc"
        .section .text.start
        .globl _start
_start: EXIT 3
