/* virtio-blk: a minimal virtio-mmio driver. Finds a virtio-blk device in slot 0 (0xd1000000,
 * GSI 16), negotiates VERSION_1, sets up queue 0 with 8 entries, writes a 512-byte pattern to
 * sector 1, reads it back into another buffer and compares. Each request is notified through
 * QueueNotify (an ioeventfd in apus: no exit) and completed by an interrupt that arrives through
 * an irqfd on IOAPIC pin 16, which this guest routes to vector 0x41.
 * Reports the number of interrupts taken, then exits 0; exit codes 10-19 name the failed step. */
#include "board.inc"
#define VIRTIO          0xd1000000
#define V_MAGIC         0x000
#define V_VERSION       0x004
#define V_DEVICE_ID     0x008
#define V_DEV_FEAT      0x010
#define V_DEV_FEAT_SEL  0x014
#define V_DRV_FEAT      0x020
#define V_DRV_FEAT_SEL  0x024
#define V_QUEUE_SEL     0x030
#define V_QUEUE_NUM_MAX 0x034
#define V_QUEUE_NUM     0x038
#define V_QUEUE_READY   0x044
#define V_QUEUE_NOTIFY  0x050
#define V_INT_STATUS    0x060
#define V_INT_ACK       0x064
#define V_STATUS        0x070
#define V_DESC_LO       0x080
#define V_DRIVER_LO     0x090
#define V_DEVICE_LO     0x0a0
#define IOAPIC          0xfec00000
#define VECTOR          0x41
#define QSIZE           8
#define DESC            0x200000
#define AVAIL           0x201000
#define USED            0x202000
#define HEADER          0x203000
#define DATA_OUT        0x204000
#define STATUS_BYTE     0x205000
#define DATA_IN         0x206000

/* After the addresses above: the shared request code uses them. */
#include "virtio-blk-request.inc"

        .section .text.start
        .globl _start
_start:
        mov r8, VIRTIO
        mov r9, LAPIC_BASE
        SET_GATE idt, VECTOR, handler
        lidt [rip + idtr]
        mov dword ptr [r9 + LAPIC_SVR], 0x1ff
        /* IOAPIC pin 16 -> VECTOR, fixed, physical, edge, active high, unmasked, APIC 0. */
        mov r10, IOAPIC
        mov dword ptr [r10], 0x10 + 2 * 16
        mov dword ptr [r10 + 0x10], VECTOR
        mov dword ptr [r10], 0x10 + 2 * 16 + 1
        mov dword ptr [r10 + 0x10], 0

        /* Identify the device. */
        cmp dword ptr [r8 + V_MAGIC], 0x74726976
        jne fail10
        cmp dword ptr [r8 + V_VERSION], 2
        jne fail11
        cmp dword ptr [r8 + V_DEVICE_ID], 2
        jne fail12

        /* Reset, ACKNOWLEDGE | DRIVER, features: VERSION_1 only. */
        mov dword ptr [r8 + V_STATUS], 0
        mov dword ptr [r8 + V_STATUS], 3
        mov dword ptr [r8 + V_DEV_FEAT_SEL], 1
        test dword ptr [r8 + V_DEV_FEAT], 1
        jz fail13
        mov dword ptr [r8 + V_DRV_FEAT_SEL], 1
        mov dword ptr [r8 + V_DRV_FEAT], 1
        mov dword ptr [r8 + V_DRV_FEAT_SEL], 0
        mov dword ptr [r8 + V_DRV_FEAT], 0
        mov dword ptr [r8 + V_STATUS], 3 | 8
        test dword ptr [r8 + V_STATUS], 8
        jz fail14

        /* Queue 0. */
        mov dword ptr [r8 + V_QUEUE_SEL], 0
        cmp dword ptr [r8 + V_QUEUE_NUM_MAX], QSIZE
        jb fail15
        mov dword ptr [r8 + V_QUEUE_NUM], QSIZE
        mov dword ptr [r8 + V_DESC_LO], DESC
        mov dword ptr [r8 + V_DRIVER_LO], AVAIL
        mov dword ptr [r8 + V_DEVICE_LO], USED
        mov dword ptr [r8 + V_QUEUE_READY], 1
        mov dword ptr [r8 + V_STATUS], 3 | 8 | 4
        cmp dword ptr [r8 + V_STATUS], 15
        jne fail16

        /* The pattern: byte i = i * 7 + 3. */
        FILL_PATTERN

        /* Request 1: OUT sector 1 from DATA_OUT. */
        mov esi, 1                              /* type OUT */
        mov edi, DATA_OUT
        xor edx, edx                            /* data descriptor flags: device-readable */
        call request
        /* Request 2: IN sector 1 into DATA_IN. */
        xor esi, esi                            /* type IN */
        mov edi, DATA_IN
        mov edx, 2                              /* device-writable */
        call request

        /* Compare. */
        COMPARE_SECTORS fail19
        cli
        mov r12d, dword ptr [rip + interrupts]
        REPORT r12d
        EXIT 0

/* request: esi = type, edi = data buffer, edx = data flags (0 or WRITE). One 3-descriptor chain
 * at descriptors 0-2, made available in the next avail slot; waits for its interrupt. */
request:
        QUEUE_REQUEST
        mov dword ptr [r8 + V_QUEUE_NOTIFY], 0  /* queue 0 */
3:      cli
        cmp dword ptr [rip + interrupts], r14d
        jne 4f
        sti
        hlt
        jmp 3b
4:      movzx eax, word ptr [USED + 2]
        cmp eax, r13d
        jne fail17
        cmp byte ptr [STATUS_BYTE], 0
        jne fail18
        ret

handler:
        push rax
        mov eax, dword ptr [r8 + V_INT_STATUS]
        mov dword ptr [r8 + V_INT_ACK], eax
        lock inc dword ptr [rip + interrupts]
        mov dword ptr [r9 + LAPIC_EOI], 0
        pop rax
        iretq

fail10: EXIT 10
fail11: EXIT 11
fail12: EXIT 12
fail13: EXIT 13
fail14: EXIT 14
fail15: EXIT 15
fail16: EXIT 16
fail17: EXIT 17
fail18: EXIT 18
fail19: EXIT 19

        IDT_STORAGE
interrupts: .skip 4
