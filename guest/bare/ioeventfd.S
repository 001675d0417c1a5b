/* ioeventfd: rings every doorbell 100 times. KVM signals their eventfds without exiting to
 * userspace. Then writes the value 2 to the datamatch doorbell 50 times: that value does not
 * match, so those writes must exit to userspace like any MMIO write. Exits 0. */
#include "board.inc"
#define RINGS 100
        .section .text.start
        .globl _start
_start:
        /* Addresses above 2 GiB do not fit a sign-extended disp32: keep them in registers. */
        mov r8, DOORBELL_FAST
        mov r9, DOORBELL_MATCH
        mov r10, DOORBELL_MMIO
        mov ecx, RINGS
1:      mov dx, DOORBELL_PORT
        mov eax, 1
        out dx, eax                                  /* PIO ioeventfd */
        mov dword ptr [r8], 0                        /* fast MMIO ioeventfd */
        mov dword ptr [r9], 1                        /* MMIO ioeventfd, datamatch 1 */
        mov dword ptr [r10], 7                       /* MMIO ioeventfd, any value */
        dec ecx
        jnz 1b

        mov ecx, 50
2:      mov dword ptr [r9], 2                        /* no match: an ordinary MMIO exit */
        dec ecx
        jnz 2b
        EXIT 0
