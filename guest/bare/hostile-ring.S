/* hostile-ring: a malicious driver attacks the split virtqueues of Apus's real devices over
 * virtio-mmio — virtio-blk in slot 0, virtio-rng in slot 1, virtio-console in slot 2 — and
 * after every attack resets the device and proves it still works. Needs 512 MiB of RAM: the
 * "4 GiB" attacks describe 4 GiB of buffers with 16 descriptors over the same 256 MiB.
 *
 * What a device must do with a ring that breaks the rules (virtio 1.2 §2.7, docs/security.md):
 * set DEVICE_NEEDS_RESET, say why once, ignore the queue until the driver resets it — never
 * loop, crash, or touch memory outside the guest's RAM. Requests that are merely wrong (a
 * 4 GiB read) complete with an error status.
 *
 * Exit status (see hostile.inc): 0 when every attack was survived; N when attack N did not end
 * the way it must; 100 + N when the device did not work after attack N's reset.
 *   1  baseline: each device works before any attack
 *      virtio-blk, each answered by DEVICE_NEEDS_RESET (then 1000 notifies are ignored):
 *   2  a descriptor that chains to itself
 *   3  a two-descriptor loop
 *   4  a chain longer than the queue without a loop: 31 descriptors, then an indirect table
 *      of 32 more (32 is the queue size)
 *   5  `next` outside the table
 *   6  a chain head outside the table (avail.ring entry 32)
 *   7  a chain head of 0xFFFF
 *   8  a buffer in MMIO space (the LAPIC page)
 *   9  a buffer whose address + length wraps around 2^64
 *  10  a buffer straddling the end of RAM
 *  11  a device-readable buffer after a device-writable one
 *      indirect-table abuse:
 *  12  length 0          13  length 24 (not a multiple of 16)
 *  14  33 entries (more than the queue size)    15  the table in MMIO space
 *  16  an indirect descriptor inside the table  17  INDIRECT together with NEXT
 *  18  a loop inside the table                  19  `next` outside the table
 *      avail.idx jumps:
 *  20  avail.idx 33 ahead of the device (more than the queue size)
 *  21  avail.idx one *behind* (0xFFFF), i.e. 65535 ahead
 *  22  not an attack but the boundary: avail.idx exactly 32 ahead, every entry the same chain,
 *      2050 times, so both indices wrap past 65535; every chain must come back
 *      the 4 GiB read (the device may not do 4 GiB of I/O for it, or write a byte of it):
 *  23  IN of 4 GiB: 16 descriptors of 256 MiB over the same RAM — must fail with IOERR
 *  24  the same through an indirect table
 *  25  OUT of 4 GiB
 *  26  notify storm: 100000 doorbells with nothing new (an ioeventfd: no exits), then 5000
 *      QueueNotify writes naming queues the device does not have (these do exit)
 *      queue layouts the device must refuse at DRIVER_OK (it sets DEVICE_NEEDS_RESET):
 *  27  size 0   28  size 3   29  size 512 (over the maximum)
 *  30  a misaligned descriptor table   31  the used ring in MMIO space
 *  32  the available ring straddling the end of RAM   33  the descriptor table above 4 GiB
 *  34  32 requests without header or status byte (completed with nothing written; the device
 *      says so — the test bounds how often)
 *      virtio-rng:
 *  35  a descriptor loop
 *  36  "4 GiB read": one chain of 256 buffers of 256 MiB (REPORTs the bytes written), then 256
 *      such chains at once (REPORTs the last one's bytes) — the device must bound the work
 *      virtio-console (transmitq):
 *  37  a descriptor loop
 *  38  a 4 GiB write: 16 descriptors of 256 MiB; all of it reaches the console output, in
 *      pieces, with no copy
 *  39  register garbage of every size on all three windows (see `garble`), then each device
 *      is reset and must work again
 * The console writes "console ok\n" after each of its checks (steps 1, 37, 38 twice, 39). */
#include "hostile.inc"

#define BLK             MMIO_SLOT0
#define RNG             (MMIO_SLOT0 + MMIO_SLOT_SIZE)
#define CON             (MMIO_SLOT0 + 2 * MMIO_SLOT_SIZE)
#define BLKQ            0x200000    /* queue areas (hostile.inc) */
#define RNGQ            0x210000
#define CONQ            0x220000
#define QSIZE           32
#define BIG             0x10000000  /* 256 MiB of RAM at 256 MiB, up to the end of RAM */
#define BIG_LEN         0x10000000
#define RAM_END         0x20000000
#define CANARY          0x0123456789abcdef
#define CONSOLE_OK_LEN  11          /* "console ok\n" */

        .section .text.start
        .globl _start
_start:
        /* A canary where the 4 GiB read would land: the device must not write it. */
        mov rax, CANARY
        mov rdi, BIG
        mov qword ptr [rdi], rax

/* ---- 1. Baseline. ------------------------------------------------------------------------ */
        STEP 1                                  /* (MMIO is above 2 GiB: no absolute disp32) */
        mov r8, BLK
        cmp dword ptr [r8 + V_MAGIC], 0x74726976
        jne fail
        cmp dword ptr [r8 + V_DEVICE_ID], 2
        jne fail
        mov r8, RNG
        cmp dword ptr [r8 + V_DEVICE_ID], 4
        jne fail
        mov r8, CON
        cmp dword ptr [r8 + V_DEVICE_ID], 3
        jne fail
        call blk_start
        call blk_check
        call rng_start
        call rng_check
        call con_start
        call con_ok

/* ---- 2–19. Broken chains: each must end in DEVICE_NEEDS_RESET. ------------------------- */
        STEP 2                                  /* desc 0 -> desc 0 -> ... */
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 16, F_NEXT, 0
        call broken

        STEP 3                                  /* desc 0 -> desc 1 -> desc 0 */
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 16, F_NEXT, 1
        DESC rbx+Q_DESC, 1, rbx, 16, F_NEXT, 0
        call broken

        STEP 4                                  /* 31 direct + 32 indirect > 32 */
        call blk_start
        xor ecx, ecx                            /* entry i of both tables: 16 bytes, NEXT -> i + 1 */
1:      mov rax, rcx
        shl rax, 4
        lea edx, [ecx + 1]
        mov qword ptr [rbx + Q_DESC + rax], rbx
        mov dword ptr [rbx + Q_DESC + rax + 8], 16
        mov word ptr [rbx + Q_DESC + rax + 12], F_NEXT
        mov word ptr [rbx + Q_DESC + rax + 14], dx
        mov qword ptr [rbx + Q_IND + rax], rbx
        mov dword ptr [rbx + Q_IND + rax + 8], 16
        mov word ptr [rbx + Q_IND + rax + 12], F_NEXT
        mov word ptr [rbx + Q_IND + rax + 14], dx
        inc ecx
        cmp ecx, QSIZE
        jb 1b
        mov word ptr [rbx + Q_IND + (QSIZE - 1) * 16 + 12], 0   /* the table's last entry ends it */
        lea rcx, [rbx + Q_IND]                  /* the main table's last entry points at it */
        DESC rbx+Q_DESC, (QSIZE-1), rcx, QSIZE*16, F_INDIRECT, 0
        call broken

        STEP 5                                  /* next = 32: one past the table */
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 16, F_NEXT, QSIZE
        call broken

        STEP 6                                  /* head 32 */
        call blk_start
        mov eax, QSIZE
        call broken_head

        STEP 7                                  /* head 0xFFFF */
        call blk_start
        mov eax, 0xffff
        call broken_head

        STEP 8                                  /* a buffer on the LAPIC page */
        call blk_start
        DESC rbx+Q_DESC, 0, LAPIC_BASE, 16, 0, 0
        call broken

        STEP 9                                  /* address + length wraps */
        call blk_start
        DESC rbx+Q_DESC, 0, 0xffffffffffffff00, 0x200, 0, 0
        call broken

        STEP 10                                 /* 16 bytes in RAM, 16 past its end */
        call blk_start
        DESC rbx+Q_DESC, 0, (RAM_END-16), 32, 0, 0
        call broken

        STEP 11                                 /* writable, then readable */
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 16, F_WRITE|F_NEXT, 1
        DESC rbx+Q_DESC, 1, rbx, 16, 0, 0
        call broken

        /* Indirect tables: descriptor 0 points at the table in Q_IND. */
        STEP 12                                 /* length 0 */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 0, F_INDIRECT, 0
        call broken

        STEP 13                                 /* length 24 */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 24, F_INDIRECT, 0
        call broken

        STEP 14                                 /* 33 entries */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, (QSIZE+1)*16, F_INDIRECT, 0
        call broken

        STEP 15                                 /* the table on the test board's MMIO probe */
        call blk_start
        DESC rbx+Q_DESC, 0, PROBE_MMIO, 48, F_INDIRECT, 0
        call broken

        STEP 16                                 /* an indirect entry inside the table */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 32, F_INDIRECT, 0
        DESC rcx, 0, rcx, 32, F_INDIRECT, 0
        call broken

        STEP 17                                 /* INDIRECT | NEXT */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 32, F_INDIRECT|F_NEXT, 1
        DESC rcx, 0, rbx, 16, 0, 0
        DESC rbx+Q_DESC, 1, rbx, 16, F_WRITE, 0
        call broken

        STEP 18                                 /* entry 0 -> 1 -> 0 inside the table */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 32, F_INDIRECT, 0
        DESC rcx, 0, rbx, 16, F_NEXT, 1
        DESC rcx, 1, rbx, 16, F_NEXT, 0
        call broken

        STEP 19                                 /* a 2-entry table whose entry 0 chains to 5 */
        call blk_start
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 32, F_INDIRECT, 0
        DESC rcx, 0, rbx, 16, F_NEXT, 5
        call broken

/* ---- 20–22. avail.idx jumps. ------------------------------------------------------------- */
        STEP 20
        call blk_start
        mov word ptr [rbx + Q_AVAIL + 2], QSIZE + 1
        call notify
        call wait_needs_reset
        call reset_and_check

        STEP 21
        call blk_start
        mov word ptr [rbx + Q_AVAIL + 2], 0xffff
        call notify
        call wait_needs_reset
        call reset_and_check

        STEP 22
        call blk_start
        call get_id_chain                       /* chain 0: GET_ID, 20 bytes, status */
        mov r12d, 2050                          /* 2050 * 32 = 65600: both indices wrap */
1:      mov byte ptr [rbx + Q_STATUS], 0xff
        movzx eax, word ptr [rbx + Q_AVAIL + 2]
        add eax, QSIZE                          /* every ring entry stays 0: the same chain */
        mov word ptr [rbx + Q_AVAIL + 2], ax
        push rax
        call notify
        pop rax
        call wait_used
        cmp byte ptr [rbx + Q_STATUS], BLK_S_OK
        jne fail
        dec r12d
        jnz 1b
        cmp word ptr [rbx + Q_USED + 2], (2050 * QSIZE) & 0xffff
        jne fail
        call blk_check                          /* still fine without a reset */
        call reset_and_check

/* ---- 23–25. The 4 GiB read. ------------------------------------------------------------- */
        STEP 23
        call blk_start
        mov edx, F_WRITE
        call four_gib_chain                     /* header, 16 x 256 MiB, status at 0–17 */
        xor eax, eax
        call submit
        call expect_ioerr
        call reset_and_check

        STEP 24                                 /* the same 18 descriptors, indirect */
        call blk_start
        mov edx, F_WRITE
        call four_gib_chain
        cld                                     /* move them into the indirect table */
        lea rsi, [rbx + Q_DESC]
        lea rdi, [rbx + Q_IND]
        mov ecx, 18 * 16 / 8
        rep movsq
        lea rcx, [rbx + Q_IND]
        DESC rbx+Q_DESC, 0, rcx, 18*16, F_INDIRECT, 0
        xor eax, eax
        call submit
        call expect_ioerr
        call reset_and_check

        STEP 25                                 /* OUT: the data is device-readable */
        call blk_start
        xor edx, edx
        call four_gib_chain
        mov dword ptr [rbx + Q_HDR], BLK_OUT
        xor eax, eax
        call submit
        call expect_ioerr
        call reset_and_check

/* ---- 26. Notify storm. ------------------------------------------------------------------- */
        STEP 26
        call blk_start
        mov r12d, 100000
1:      mov dword ptr [r8 + V_QUEUE_NOTIFY], 0  /* queue 0: the ioeventfd takes it */
        dec r12d
        jnz 1b
        mov r12d, 5000
2:      mov dword ptr [r8 + V_QUEUE_NOTIFY], 1  /* no queue 1: exits, and is ignored */
        mov dword ptr [r8 + V_QUEUE_NOTIFY], 0xffffffff
        dec r12d
        jnz 2b
        call blk_check
        call reset_and_check

/* ---- 27–33. Queue layouts the device must refuse. --------------------------------------- */
        STEP 27
        call bad_layout_begin
        mov dword ptr [r8 + V_QUEUE_NUM], 0
        call bad_layout_end

        STEP 28
        call bad_layout_begin
        mov dword ptr [r8 + V_QUEUE_NUM], 3
        call bad_layout_end

        STEP 29
        call bad_layout_begin
        mov dword ptr [r8 + V_QUEUE_NUM], 512
        call bad_layout_end

        STEP 30
        call bad_layout_begin
        lea rax, [rbx + Q_DESC + 8]
        mov dword ptr [r8 + V_DESC_LO], eax
        call bad_layout_end

        STEP 31
        call bad_layout_begin
        mov dword ptr [r8 + V_DEVICE_LO], PROBE_MMIO
        call bad_layout_end

        STEP 32
        call bad_layout_begin
        mov dword ptr [r8 + V_DRIVER_LO], RAM_END - 64
        call bad_layout_end

        STEP 33
        call bad_layout_begin
        mov dword ptr [r8 + V_DESC_HI], 1
        call bad_layout_end

/* ---- 34. Requests without header or status byte. ----------------------------------------- */
        STEP 34
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 1, F_WRITE, 0
        mov word ptr [rbx + Q_AVAIL + 2], QSIZE /* 32 times chain 0 */
        call notify
        mov eax, QSIZE
        call wait_used
        call last_used_len
        test eax, eax                           /* nothing written */
        jnz fail
        call reset_and_check

/* ---- 35–36. virtio-rng. ------------------------------------------------------------------ */
        STEP 35
        call rng_start
        DESC rbx+Q_DESC, 0, BIG, 64, F_WRITE|F_NEXT, 0
        call broken_rng

        STEP 36
        mov edx, 256                            /* the device's maximum */
        call rng_start_size
        xor ecx, ecx                            /* descriptors 0..255: 256 MiB each, chained */
1:      mov rax, rcx
        shl rax, 4
        mov rdx, BIG
        mov qword ptr [rbx + Q_DESC + rax], rdx
        mov dword ptr [rbx + Q_DESC + rax + 8], BIG_LEN
        mov word ptr [rbx + Q_DESC + rax + 12], F_WRITE | F_NEXT
        lea edx, [ecx + 1]
        mov word ptr [rbx + Q_DESC + rax + 14], dx
        inc ecx
        cmp ecx, 256
        jb 1b
        mov word ptr [rbx + Q_DESC + 255 * 16 + 12], F_WRITE
        xor eax, eax
        call submit                             /* one chain: 64 GiB of buffers */
        call last_used_len
        mov r12d, eax
        REPORT r12d
        mov word ptr [rbx + Q_AVAIL + 2], 257   /* 256 more, all chain 0 (the ring is zeroed) */
        call notify
        mov eax, 257
        call wait_used
        call last_used_len
        mov r12d, eax
        REPORT r12d
        call rng_start
        call rng_check

/* ---- 37–38. virtio-console. -------------------------------------------------------------- */
        STEP 37                                 /* (length 0: the loop itself prints nothing) */
        call con_start
        DESC rbx+Q_DESC, 0, rbx, 0, F_NEXT, 0
        call broken_con

        STEP 38
        call con_start
        xor ecx, ecx                            /* 16 x 256 MiB at descriptors 0..15 */
        xor r9d, r9d
        call big_descs
        mov word ptr [rbx + Q_DESC + 15 * 16 + 12], 0   /* the last one ends the chain */
        xor eax, eax
        call submit
        call con_ok                             /* still fine without a reset */
        call con_start
        call con_ok

/* ---- 39. Register garbage on all three windows. ------------------------------------------ */
        STEP 39
        mov r8, BLK
        mov esi, MMIO_WINDOW + 8                /* + 8: the last accesses straddle the end */
        call garble
        mov r8, RNG
        mov esi, MMIO_WINDOW + 8
        call garble
        mov r8, CON
        mov esi, MMIO_WINDOW + 8
        call garble
        call reset_and_check
        call rng_start
        call rng_check
        call con_start
        call con_ok

        EXIT 0

/* ---- Helpers. ---------------------------------------------------------------------------- */

read_status:
        jmp mmio_read_status

/* blk_start / rng_start / con_start: reset the device, set its queue up afresh (rbx, r8 =
 * the queue area and the device) and start it. */
blk_start:
        mov r8, BLK
        mov rbx, BLKQ
        call mmio_begin
        xor ecx, ecx
        mov edx, QSIZE
        call mmio_queue
        jmp mmio_go

rng_start:
        mov edx, QSIZE
rng_start_size:                                 /* edx = queue size */
        push rdx
        mov r8, RNG
        mov rbx, RNGQ
        call mmio_begin
        xor ecx, ecx
        pop rdx
        call mmio_queue
        jmp mmio_go

con_start:                                      /* transmitq only (queue 1) */
        mov r8, CON
        mov rbx, CONQ
        call mmio_begin
        mov ecx, 1
        mov edx, QSIZE
        call mmio_queue
        jmp mmio_go

/* con_ok: "console ok\n" through the console (queue rbx). */
con_ok:
        add r15d, 100
        lea r12, [rip + console_ok]
        mov r13d, CONSOLE_OK_LEN
        call console_say
        sub r15d, 100
        ret

/* reset_and_check: reset virtio-blk, set it up again and move a sector each way. */
reset_and_check:
        call blk_start
        jmp blk_check

/* broken: makes chain 0 of queue rbx (virtio-blk) available, rings, and expects
 * DEVICE_NEEDS_RESET; 1000 more doorbells must then be ignored. Then reset_and_check. */
broken:
        xor eax, eax
broken_head:                                    /* eax = the head to publish */
        call publish
        call notify
        call wait_needs_reset
        mov r12d, 1000
1:      call notify
        dec r12d
        jnz 1b
        cmp word ptr [rbx + Q_USED + 2], 0
        jne fail
        jmp reset_and_check

broken_rng:
        xor eax, eax
        call publish
        call notify
        call wait_needs_reset
        call rng_start
        jmp rng_check

broken_con:
        xor eax, eax
        call publish
        call notify
        call wait_needs_reset
        call con_start
        jmp con_ok

/* bad_layout_begin / _end: the handshake up to a ready queue 0 of virtio-blk, then (between
 * the two) the caller spoils one field; DRIVER_OK must then come back with
 * DEVICE_NEEDS_RESET set. */
bad_layout_begin:
        mov r8, BLK
        mov rbx, BLKQ
        call mmio_begin
        mov dword ptr [r8 + V_QUEUE_SEL], 0     /* the fields, but not yet QueueReady */
        mov dword ptr [r8 + V_QUEUE_NUM], QSIZE
        mov dword ptr [rbx + Q_SIZE], QSIZE
        lea rax, [rbx + Q_DESC]
        mov dword ptr [r8 + V_DESC_LO], eax
        mov dword ptr [r8 + V_DESC_HI], 0
        lea rax, [rbx + Q_AVAIL]
        mov dword ptr [r8 + V_DRIVER_LO], eax
        mov dword ptr [r8 + V_DRIVER_HI], 0
        lea rax, [rbx + Q_USED]
        mov dword ptr [r8 + V_DEVICE_LO], eax
        mov dword ptr [r8 + V_DEVICE_HI], 0
        ret
bad_layout_end:
        mov dword ptr [r8 + V_QUEUE_READY], 1
        mov dword ptr [r8 + V_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        test dword ptr [r8 + V_STATUS], S_NEEDS_RESET
        jz fail
        jmp reset_and_check

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

/* big_descs: descriptors ecx..ecx + 15 = 256 MiB each at BIG, flags r9w | NEXT, each
 * chained to the next: 4 GiB of buffers over the same 256 MiB of RAM. */
big_descs:
        lea r10d, [ecx + 16]
        or r9d, F_NEXT
1:      mov rax, rcx
        shl rax, 4
        mov rsi, BIG
        mov qword ptr [rbx + Q_DESC + rax], rsi
        mov dword ptr [rbx + Q_DESC + rax + 8], BIG_LEN
        mov word ptr [rbx + Q_DESC + rax + 12], r9w
        lea esi, [ecx + 1]
        mov word ptr [rbx + Q_DESC + rax + 14], si
        inc ecx
        cmp ecx, r10d
        jb 1b
        ret

/* four_gib_chain: a virtio-blk IN of sector 0 at descriptors 0..17: header, 16 x 256 MiB of
 * data (flags edx: F_WRITE for IN, 0 for OUT), status byte. */
four_gib_chain:
        mov r9d, edx
        mov dword ptr [rbx + Q_HDR], BLK_IN
        mov dword ptr [rbx + Q_HDR + 4], 0
        mov qword ptr [rbx + Q_HDR + 8], 0
        mov byte ptr [rbx + Q_STATUS], 0xff
        lea rcx, [rbx + Q_HDR]
        DESC rbx+Q_DESC, 0, rcx, 16, F_NEXT, 1
        mov ecx, 1
        call big_descs
        lea rcx, [rbx + Q_STATUS]
        DESC rbx+Q_DESC, 17, rcx, 1, F_WRITE, 0
        ret

/* expect_ioerr: the newest request completed with IOERR, one byte written (the status), and
 * not a byte of the 4 GiB reached RAM (the canary at BIG is intact). */
expect_ioerr:
        cmp byte ptr [rbx + Q_STATUS], BLK_S_IOERR
        jne fail
        call last_used_len
        cmp eax, 1
        jne fail
        mov rax, CANARY
        mov rdi, BIG
        cmp qword ptr [rdi], rax
        jne fail
        ret

        .section .rodata
console_ok:     .ascii "console ok\n"   /* CONSOLE_OK_LEN bytes */
