/* spin: loops forever without exiting, so only a kick from another thread can stop it. */
#include "board.inc"
        .section .text.start
        .globl _start
_start: jmp _start
