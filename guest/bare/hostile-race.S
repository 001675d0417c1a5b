/* hostile-race: status writes on one vCPU racing I/O on another (2 vCPUs, virtio-blk over
 * virtio-mmio in slot 0, 64 MiB of RAM).
 *
 * vCPU 0 is the driver: it keeps requests flowing. vCPU 1 is the saboteur: it resets the
 * device under it. The device's I/O thread serves the queue while the reset arrives from a
 * vCPU thread, so a reset must wait for a queue run in progress and then leave nothing of it
 * behind: once the driver has written 0 to the status register, the status must read 0
 * (virtio 1.2 §2.1.2, §4.2.2.1) — not a DEVICE_NEEDS_RESET the old queue raised meanwhile.
 *
 * Exit status (see hostile.inc): 0 when the race was survived; otherwise the step (100 + step:
 * the device did not work afterwards):
 *   1  baseline: a sector each way
 *   2  the free-for-all: vCPU 1 resets and restarts the device 1000 times (status 0 must read
 *      back 0 each time) while vCPU 0 makes requests available and rings, without waiting
 *   3  the targeted race, 256 rounds: vCPU 0 makes a slow batch available — 31 reads of
 *      1 MiB, then a descriptor loop — and rings; vCPU 1 waits 0 to 3 ms (more each round)
 *      and resets. Whenever the reset lands while the device works through the batch, it
 *      waits for the batch, whose last chain is broken; the status must still read 0 after it.
 *      REPORTs how many resets found the batch half done (used.idx strictly between 0 and 31);
 *      on failure, REPORTs the status that read back instead of 0
 * Then vCPU 0 resets the device and moves a sector each way again. */
#include "hostile.inc"

#define BLK             MMIO_SLOT0
#define BLKQ            0x200000
#define QSIZE           128
#define DATA            0x400000        /* 1 MiB, shared by every read of step 3 */
#define DATA_LEN        0x100000
#define ROUNDS          256
#define STEP3_DELAY     (3 * 2600 * 1000 / 32)  /* cycles per round's extra delay: 3 ms / 32 at 2.6 GHz */

        .section .text.start
        .globl _start
_start:
        mov r8, BLK
        mov rbx, BLKQ
        test edi, edi
        jnz saboteur

/* ---- vCPU 0: the driver. ------------------------------------------------------------------ */
        STEP 1
        call blk_start
        call blk_check

        STEP 2
        call blk_start
        call get_id_chain
        lock inc dword ptr [rip + phase]        /* 1: vCPU 1 starts resetting */
        xor r12d, r12d                          /* completions seen */
        xor r13d, r13d                          /* used.idx last seen */
1:      xor eax, eax
        call publish
        call notify
        mov ecx, 2000                           /* a short look for the completion, no more */
2:      movzx eax, word ptr [rbx + Q_USED + 2]
        cmp eax, r13d
        jne 3f
        pause
        dec ecx
        jnz 2b
        jmp 4f
3:      mov r13d, eax
        inc r12d
4:      cmp dword ptr [rip + phase], 2          /* vCPU 1 done? */
        jb 1b
        REPORT r12d
        call reset_and_check

        STEP 3
        xor r12d, r12d
1:      call blk_start
        call slow_batch
        mov word ptr [rbx + Q_AVAIL + 2], 32    /* 31 reads and the broken chain, at once */
        call notify
        lock inc dword ptr [rip + round]        /* go, vCPU 1 */
2:      pause
        cmp dword ptr [rip + acked], r12d
        je 2b
        inc r12d
        mov r13d, dword ptr [rip + bad_status]
        test r13d, r13d
        jz 3f
        REPORT r13d                             /* what the status read after the reset */
        jmp fail
3:      cmp r12d, ROUNDS
        jb 1b
        mov r12d, dword ptr [rip + mid_batch]
        REPORT r12d
        call reset_and_check
        EXIT 0

/* ---- vCPU 1: the saboteur. ---------------------------------------------------------------- */
saboteur:
        STEP 2
1:      pause                                   /* wait for vCPU 0's baseline */
        cmp dword ptr [rip + phase], 1
        jb 1b
        mov r12d, 1000
2:      call restart                            /* fails (exit 2) if status 0 does not read 0 */
        call now                                /* then 0 to 25 microseconds, varying */
        movzx r13d, ax
        add r13, rax
3:      pause
        call now
        cmp rax, r13
        jb 3b
        dec r12d
        jnz 2b
        lock inc dword ptr [rip + phase]        /* 2: done */

        STEP 3
        xor r12d, r12d                          /* rounds done */
4:      cmp dword ptr [rip + round], r12d       /* wait for vCPU 0's batch */
        jne 5f
        pause
        jmp 4b
5:      mov eax, r12d                           /* wait round % 32 * 3/32 ms */
        and eax, 31
        imul rax, rax, STEP3_DELAY
        mov r13, rax
        call now
        add r13, rax
6:      pause
        call now
        cmp rax, r13
        jb 6b
        movzx eax, word ptr [rbx + Q_USED + 2]  /* how far the device got */
        mov dword ptr [r8 + V_STATUS], 0        /* reset: waits for the batch in progress */
        mov ecx, dword ptr [r8 + V_STATUS]
        test ecx, ecx
        jz 7f
        mov dword ptr [rip + bad_status], ecx
7:      test eax, eax
        jz 8f
        cmp eax, 31
        jae 8f
        lock inc dword ptr [rip + mid_batch]
8:      inc r12d
        mov dword ptr [rip + acked], r12d
        cmp r12d, ROUNDS
        jb 4b
park:   cli
        hlt
        jmp park

/* ---- Helpers. ----------------------------------------------------------------------------- */

read_status:
        jmp mmio_read_status

blk_start:
        call mmio_begin
        xor ecx, ecx
        mov edx, QSIZE
        call mmio_queue
        jmp mmio_go

reset_and_check:
        call blk_start
        jmp blk_check

/* restart (vCPU 1): the whole handshake again on the queue vCPU 0 uses — without clearing
 * the descriptors vCPU 0 set up, only the two ring indices, as a driver restarting a queue. */
restart:
        call mmio_begin
        mov dword ptr [r8 + V_QUEUE_SEL], 0
        mov dword ptr [r8 + V_QUEUE_NUM], QSIZE
        lea rax, [rbx + Q_DESC]
        mov dword ptr [r8 + V_DESC_LO], eax
        mov dword ptr [r8 + V_DESC_HI], 0
        lea rax, [rbx + Q_AVAIL]
        mov dword ptr [r8 + V_DRIVER_LO], eax
        mov dword ptr [r8 + V_DRIVER_HI], 0
        lea rax, [rbx + Q_USED]
        mov dword ptr [r8 + V_DEVICE_LO], eax
        mov dword ptr [r8 + V_DEVICE_HI], 0
        mov word ptr [rbx + Q_AVAIL + 2], 0
        mov word ptr [rbx + Q_USED + 2], 0
        mov dword ptr [r8 + V_QUEUE_READY], 1
        mov dword ptr [r8 + V_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        ret

/* get_id_chain: chain 0 = GET_ID header, 20 writable bytes, status byte. */
get_id_chain:
        mov dword ptr [rbx + Q_HDR], BLK_GET_ID
        mov dword ptr [rbx + Q_HDR + 4], 0
        mov qword ptr [rbx + Q_HDR + 8], 0
        lea rcx, [rbx + Q_HDR]
        DESC rbx+Q_DESC, 0, rcx, 16, F_NEXT, 1
        lea rcx, [rbx + Q_IN]
        DESC rbx+Q_DESC, 1, rcx, 20, F_WRITE|F_NEXT, 2
        lea rcx, [rbx + Q_STATUS]
        DESC rbx+Q_DESC, 2, rcx, 1, F_WRITE, 0
        ret

/* slow_batch: chains 0, 3, ..., 90 = 31 reads of 1 MiB from sector 0 into DATA (header and
 * status shared), chain 93 = a descriptor that chains to itself; avail.ring[0..31] = them. */
slow_batch:
        mov dword ptr [rbx + Q_HDR], BLK_IN
        mov dword ptr [rbx + Q_HDR + 4], 0
        mov qword ptr [rbx + Q_HDR + 8], 0
        xor ecx, ecx                            /* ecx = request, rdi = its first descriptor */
1:      imul edi, ecx, 3 * 16
        lea rdi, [rbx + Q_DESC + rdi]
        lea rax, [rbx + Q_HDR]
        mov qword ptr [rdi], rax
        mov dword ptr [rdi + 8], 16
        mov word ptr [rdi + 12], F_NEXT
        imul eax, ecx, 3
        lea edx, [eax + 1]
        mov word ptr [rdi + 14], dx
        mov qword ptr [rdi + 16], DATA
        mov dword ptr [rdi + 24], DATA_LEN
        mov word ptr [rdi + 28], F_WRITE | F_NEXT
        lea edx, [eax + 2]
        mov word ptr [rdi + 30], dx
        lea rdx, [rbx + Q_STATUS]
        mov qword ptr [rdi + 32], rdx
        mov dword ptr [rdi + 40], 1
        mov word ptr [rdi + 44], F_WRITE
        mov word ptr [rdi + 46], 0
        mov word ptr [rbx + Q_AVAIL + 4 + rcx * 2], ax
        inc ecx
        cmp ecx, 31
        jb 1b
        DESC rbx+Q_DESC, 93, rbx, 16, F_NEXT, 93
        mov word ptr [rbx + Q_AVAIL + 4 + 31 * 2], 93
        ret

        .section .bss
        .balign 64
phase:          .skip 4         /* 1: vCPU 1 may start step 2; 2: it finished */
round:          .skip 4         /* step 3: batches vCPU 0 has made available */
acked:          .skip 4         /* step 3: rounds vCPU 1 has finished */
bad_status:     .skip 4         /* step 3: a status that did not read 0 after a reset */
mid_batch:      .skip 4         /* step 3: resets that found the batch half done */
