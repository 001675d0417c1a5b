/* virtio-pci: a minimal virtio-pci driver that finds everything the way a real one does.
 *
 * virtio-blk.S knows its device's address because virtio-mmio slots are fixed. A PCI device
 * instead tells the driver where it is: the driver scans the bus for an ID it knows, reads the
 * base address registers (BARs) the firmware assigned, and walks the capability list to learn
 * in which BAR, at which offset, the device keeps each structure. This guest does exactly that:
 *
 *   1. scan bus 0 with configuration mechanism #1 (ports 0xCF8/0xCFC) for a virtio-blk:
 *      1AF4:1042 (modern) or 1AF4:1001 (transitional: it has the modern interface too);
 *   2. read the six BARs and turn on memory, I/O and bus-master decoding in Command;
 *   3. walk the capabilities: the virtio vendor capabilities (ID 0x09) locate the common
 *      configuration and the notify area; the MSI-X capability (ID 0x11) locates the vector
 *      table;
 *   4. program MSI-X vector 1 to send VECTOR to APIC 0, and enable MSI-X;
 *   5. the virtio 1.x handshake through the common configuration (virtio 1.2 §3.1.1):
 *      ACKNOWLEDGE, DRIVER, negotiate VERSION_1, FEATURES_OK, set up queue 0 with MSI-X
 *      vector 1, DRIVER_OK;
 *   6. write sector 1 with the pattern i * 7 + 3, read it back and compare. Each request rings
 *      queue 0's doorbell (an ioeventfd in Apus: no exit) — with `out` when the notify area
 *      is in an I/O BAR, with a memory store otherwise — and waits for the MSI-X interrupt.
 *
 * Reports the number of interrupts taken (ProbeDevice REPORT), then exits 0 through the
 * debug-exit port. Any other exit status names the step that failed:
 *   20  no virtio-blk (1AF4:1042 or 1AF4:1001) on bus 0
 *   21  the device has no capability list (Status bit 4 clear)
 *   22  no virtio common-configuration capability (cfg_type 1)
 *   23  no virtio notify capability (cfg_type 2)
 *   24  no MSI-X capability, or its table has fewer than 2 vectors
 *   25  a structure lies in a BAR that is unassigned (reads 0), or the common configuration or
 *      MSI-X table is in an I/O BAR (only the notify area may be port I/O here)
 *   26  the device does not offer VIRTIO_F_VERSION_1
 *   27  the device cleared FEATURES_OK: it refused our features
 *   28  queue 0 is missing or smaller than QSIZE
 *   29  queue_msix_vector read back NO_VECTOR (0xFFFF): the device refused vector 1
 *   30  the status after DRIVER_OK is not exactly 0x0F (e.g. DEVICE_NEEDS_RESET is set)
 *   31  after the interrupt, used.idx is not the one we waited for
 *   32  a request completed with a status byte other than VIRTIO_BLK_S_OK
 *   33  the sector read back differs from the one written
 */
#include "board.inc"

/* Configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): write the enable bit, bus,
 * device, function and dword-aligned register to CONFIG_ADDRESS, then access CONFIG_DATA at
 * 0xCFC + (register % 4) with the access size you want. */
#define PCI_CONFIG_ADDRESS  0xcf8
#define PCI_CONFIG_DATA     0xcfc
#define PCI_ENABLE          0x80000000
#define PCI_DEVICE_SHIFT    11

/* The type-0 header registers we use. */
#define PCI_ID              0x00    /* vendor ID (low 16 bits) and device ID (high 16 bits) */
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_BAR0            0x10
#define PCI_CAP_POINTER     0x34
#define COMMAND_IO          0x1
#define COMMAND_MEMORY      0x2
#define COMMAND_BUS_MASTER  0x4     /* lets the device read and write guest RAM (the rings) */
#define STATUS_CAP_LIST     0x10

#define VIRTIO_BLK_MODERN        0x10421af4   /* 1AF4:1042, 0x1040 + device type 2 */
#define VIRTIO_BLK_TRANSITIONAL  0x10011af4   /* 1AF4:1001 */

/* Capabilities: each starts with an ID byte and a next-pointer byte. */
#define CAP_ID_VENDOR       0x09    /* virtio's structures (struct virtio_pci_cap) */
#define CAP_ID_MSIX         0x11
/* struct virtio_pci_cap (virtio 1.2 §4.1.4) */
#define VCAP_CFG_TYPE       3
#define VCAP_BAR            4
#define VCAP_OFFSET         8
#define VCAP_LENGTH         12
#define VCAP_NOTIFY_MULT    16      /* only in the notify capability */
#define CFG_TYPE_COMMON     1
#define CFG_TYPE_NOTIFY     2
/* The MSI-X capability (PCI Local Bus 3.0 §6.8.2) */
#define MSIX_CONTROL        2       /* 16 bits: table size - 1 in 10:0, function mask 14, enable 15 */
#define MSIX_TABLE          4       /* 32 bits: BIR (which BAR) in 2:0, offset in 31:3 */
#define MSIX_ENABLE         0x8000
#define MSIX_ENTRY_SIZE     16      /* address low, address high, data, vector control */
#define MSIX_VECTOR_MASKED  1       /* bit 0 of vector control */

/* The common configuration structure (virtio 1.2 §4.1.4.3). */
#define C_DEVICE_FEATURE_SELECT 0x00
#define C_DEVICE_FEATURE        0x04
#define C_DRIVER_FEATURE_SELECT 0x08
#define C_DRIVER_FEATURE        0x0c
#define C_CONFIG_MSIX_VECTOR    0x10
#define C_DEVICE_STATUS         0x14
#define C_QUEUE_SELECT          0x16
#define C_QUEUE_SIZE            0x18
#define C_QUEUE_MSIX_VECTOR     0x1a
#define C_QUEUE_ENABLE          0x1c
#define C_QUEUE_NOTIFY_OFF      0x1e
#define C_QUEUE_DESC            0x20
#define C_QUEUE_DRIVER          0x28
#define C_QUEUE_DEVICE          0x30
#define NO_VECTOR               0xffff

/* Device status bits (virtio 1.2 §2.1). */
#define S_ACKNOWLEDGE       1
#define S_DRIVER            2
#define S_DRIVER_OK         4
#define S_FEATURES_OK       8

/* Our choices: MSI-X table entry 1 for queue 0 (entry 0 stays masked, unused), the IDT
 * vector it raises, and the same ring layout and buffers as virtio-blk.S. */
#define QUEUE_MSIX_ENTRY    1
#define VECTOR              0x42
#define QSIZE               8
#define DESC                0x200000
#define AVAIL               0x201000
#define USED                0x202000
#define HEADER              0x203000
#define DATA_OUT            0x204000
#define STATUS_BYTE         0x205000
#define DATA_IN             0x206000

/* After the addresses above: the shared request code uses them. */
#include "virtio-blk-request.inc"

        .section .text.start
        .globl _start
_start:
        SET_GATE idt, VECTOR, handler
        lidt [rip + idtr]
        mov r9, LAPIC_BASE
        mov dword ptr [r9 + LAPIC_SVR], 0x1ff   /* software-enable the local APIC */

/* ---- 1. Find the device: try every slot of bus 0 (function 0 is enough here). ---------- */
        xor ebx, ebx                            /* ebx = device number */
scan:
        mov r12d, ebx
        shl r12d, PCI_DEVICE_SHIFT
        or r12d, PCI_ENABLE                     /* r12d = this slot's CONFIG_ADDRESS base */
        mov ecx, PCI_ID
        call cfg_read32                         /* an empty slot reads all ones */
        cmp eax, VIRTIO_BLK_MODERN
        je found
        cmp eax, VIRTIO_BLK_TRANSITIONAL
        je found
        inc ebx
        cmp ebx, 32
        jb scan
        EXIT 20
found:                                          /* from here on r12d selects our device */

/* ---- 2. The BARs. The firmware (here: Apus) has placed them; we only read them. Bit 0
 * set means I/O space (address in 31:2); clear means memory, with the type in bits 2:1
 * (2 = 64-bit: the next BAR holds the high half) and the address in 31:4. */
        xor ebx, ebx                            /* ebx = BAR index */
read_bar:
        lea ecx, [PCI_BAR0 + ebx * 4]
        call cfg_read32
        lea rdi, [rip + bar_base]
        lea rsi, [rip + bar_is_io]
        test eax, 1
        jz 1f
        and eax, ~0x3                           /* I/O BAR */
        mov qword ptr [rdi + rbx * 8], rax
        mov byte ptr [rsi + rbx], 1
        jmp 2f
1:      mov edx, eax                            /* memory BAR */
        and eax, ~0xf
        mov qword ptr [rdi + rbx * 8], rax
        and edx, 0x6
        cmp edx, 0x4                            /* type 2: 64-bit */
        jne 2f
        cmp ebx, 5
        jae 2f
        inc ebx                                 /* the high half is the next register */
        lea ecx, [PCI_BAR0 + ebx * 4]
        call cfg_read32
        shl rax, 32
        or qword ptr [rdi + rbx * 8 - 8], rax
2:      inc ebx
        cmp ebx, 6
        jb read_bar

        /* Decode our BARs and let the device master the bus: Command = I/O | memory | master.
         * (At reset Command is 0: the device answers nothing but configuration cycles.) */
        mov ecx, PCI_COMMAND
        mov esi, COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER
        call cfg_write16

/* ---- 3. Walk the capability list and remember the first capability of each kind we need
 * (virtio 1.2 §4.1.4: the driver uses the first one it can). */
        mov ecx, PCI_STATUS
        call cfg_read16
        test eax, STATUS_CAP_LIST
        jz fail21
        mov ecx, PCI_CAP_POINTER
        call cfg_read8
        mov ebx, eax                            /* ebx = current capability's offset */
        mov r13d, 48                            /* at most 48 dword-aligned capabilities fit: stop a looping list */
walk:
        and ebx, 0xfc                           /* the low 2 bits are reserved */
        jz walked                               /* a next-pointer of 0 ends the list */
        dec r13d
        jz walked
        mov ecx, ebx
        call cfg_read8                          /* capability ID */
        cmp eax, CAP_ID_MSIX
        jne 1f
        cmp dword ptr [rip + cap_msix], 0
        jne next_cap
        mov dword ptr [rip + cap_msix], ebx
        jmp next_cap
1:      cmp eax, CAP_ID_VENDOR
        jne next_cap
        lea ecx, [ebx + VCAP_BAR]
        call cfg_read8
        cmp eax, 5                              /* bar values 6..255 are reserved: ignore the capability */
        ja next_cap
        lea ecx, [ebx + VCAP_CFG_TYPE]
        call cfg_read8
        lea rdi, [rip + cap_common]
        cmp eax, CFG_TYPE_COMMON
        je 2f
        lea rdi, [rip + cap_notify]
        cmp eax, CFG_TYPE_NOTIFY
        jne next_cap                            /* ISR, device config, PCI config: not needed here */
2:      cmp dword ptr [rdi], 0
        jne next_cap
        mov dword ptr [rdi], ebx
next_cap:
        lea ecx, [ebx + 1]
        call cfg_read8                          /* next pointer */
        mov ebx, eax
        jmp walk
walked:
        cmp dword ptr [rip + cap_common], 0
        je fail22
        cmp dword ptr [rip + cap_notify], 0
        je fail23
        cmp dword ptr [rip + cap_msix], 0
        je fail24

        /* Common configuration = its BAR's address + offset, in memory space. */
        mov ebx, dword ptr [rip + cap_common]
        call vcap_address                       /* rax = address, edx = 1 if in an I/O BAR */
        test edx, edx
        jnz fail25
        mov r8, rax                             /* r8 = common configuration, for the rest of the run */

        /* Notify area: its address (memory or port), and notify_off_multiplier. */
        mov ebx, dword ptr [rip + cap_notify]
        call vcap_address
        mov qword ptr [rip + notify_base], rax
        mov byte ptr [rip + notify_is_io], dl
        lea ecx, [ebx + VCAP_NOTIFY_MULT]
        call cfg_read32
        mov dword ptr [rip + notify_multiplier], eax

/* ---- 4. MSI-X. The table lives in a BAR too: BIR (bits 2:0 of the table register) names
 * it, the rest is the offset. Every entry starts masked; we fill entry QUEUE_MSIX_ENTRY with
 * an x86 MSI message — address 0xFEE00000 | destination APIC ID << 12 (here APIC 0), data =
 * the vector (fixed delivery, edge) — and unmask it last, so it never fires half-written. */
        mov ebx, dword ptr [rip + cap_msix]
        lea ecx, [ebx + MSIX_CONTROL]
        call cfg_read16
        and eax, 0x7ff                          /* table size - 1 */
        cmp eax, QUEUE_MSIX_ENTRY
        jb fail24
        lea ecx, [ebx + MSIX_TABLE]
        call cfg_read32
        mov ecx, eax
        and ecx, 7                              /* BIR */
        and eax, ~7                             /* offset */
        cmp ecx, 5
        ja fail25
        lea rsi, [rip + bar_is_io]
        cmp byte ptr [rsi + rcx], 0
        jne fail25
        lea rsi, [rip + bar_base]
        mov rdi, qword ptr [rsi + rcx * 8]
        test rdi, rdi
        jz fail25
        add rdi, rax                            /* rdi = MSI-X table */

        /* Enable MSI-X: from now on the device signals through the table, not its INTx pin. */
        lea ecx, [ebx + MSIX_CONTROL]
        call cfg_read16
        or eax, MSIX_ENABLE
        mov esi, eax
        call cfg_write16

        lea rdi, [rdi + QUEUE_MSIX_ENTRY * MSIX_ENTRY_SIZE]
        mov dword ptr [rdi + 0], LAPIC_BASE     /* message address low: APIC 0 */
        mov dword ptr [rdi + 4], 0              /* message address high */
        mov dword ptr [rdi + 8], VECTOR         /* message data */
        mov dword ptr [rdi + 12], 0             /* vector control: clear MSIX_VECTOR_MASKED */

/* ---- 5. The virtio handshake, through the common configuration (r8). Its fields must be
 * accessed with their own width: status 8 bits, selects and vectors 16, features 32, and the
 * 64-bit queue addresses as two 32-bit halves. */
        mov byte ptr [r8 + C_DEVICE_STATUS], 0  /* reset, and wait until it reads back 0 */
1:      cmp byte ptr [r8 + C_DEVICE_STATUS], 0
        jne 1b
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE              /* we saw the device */
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER   /* and can drive it */

        /* Features: the device offers 64 bits, 32 at a time. We want VIRTIO_F_VERSION_1
         * (bit 32, i.e. bit 0 of the second window) and nothing else. */
        mov dword ptr [r8 + C_DEVICE_FEATURE_SELECT], 1
        test dword ptr [r8 + C_DEVICE_FEATURE], 1
        jz fail26
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 0
        mov dword ptr [r8 + C_DRIVER_FEATURE], 0
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 1
        mov dword ptr [r8 + C_DRIVER_FEATURE], 1
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_FEATURES_OK   /* still set: features accepted */
        jz fail27

        /* No configuration-change interrupts. */
        mov word ptr [r8 + C_CONFIG_MSIX_VECTOR], NO_VECTOR

        /* Queue 0: queue_size reads the device's maximum; we may ask for less. */
        mov word ptr [r8 + C_QUEUE_SELECT], 0
        cmp word ptr [r8 + C_QUEUE_SIZE], QSIZE
        jb fail28                               /* also catches 0: no such queue */
        mov word ptr [r8 + C_QUEUE_SIZE], QSIZE
        /* Its completions go to MSI-X entry QUEUE_MSIX_ENTRY; a device that cannot do that
         * answers NO_VECTOR on read-back (virtio 1.2 §4.1.5.1.2). */
        mov word ptr [r8 + C_QUEUE_MSIX_VECTOR], QUEUE_MSIX_ENTRY
        cmp word ptr [r8 + C_QUEUE_MSIX_VECTOR], NO_VECTOR
        je fail29
        mov dword ptr [r8 + C_QUEUE_DESC], DESC
        mov dword ptr [r8 + C_QUEUE_DESC + 4], 0
        mov dword ptr [r8 + C_QUEUE_DRIVER], AVAIL
        mov dword ptr [r8 + C_QUEUE_DRIVER + 4], 0
        mov dword ptr [r8 + C_QUEUE_DEVICE], USED
        mov dword ptr [r8 + C_QUEUE_DEVICE + 4], 0

        /* Queue 0's doorbell: notify base + queue_notify_off * notify_off_multiplier. */
        movzx eax, word ptr [r8 + C_QUEUE_NOTIFY_OFF]
        imul eax, dword ptr [rip + notify_multiplier]
        add rax, qword ptr [rip + notify_base]
        mov r15, rax                            /* r15 = queue 0's doorbell */

        mov word ptr [r8 + C_QUEUE_ENABLE], 1
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        cmp byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        jne fail30

/* ---- 6. I/O: the same two requests as virtio-blk.S. The pattern: byte i = i * 7 + 3. */
        FILL_PATTERN

        mov esi, 1                              /* type OUT: write sector 1 from DATA_OUT */
        mov edi, DATA_OUT
        xor edx, edx                            /* data descriptor flags: device-readable */
        call request
        xor esi, esi                            /* type IN: read sector 1 into DATA_IN */
        mov edi, DATA_IN
        mov edx, 2                              /* device-writable */
        call request

        COMPARE_SECTORS fail33
        cli
        mov r12d, dword ptr [rip + interrupts]
        REPORT r12d
        EXIT 0

/* request: esi = type, edi = data buffer, edx = data flags (0 or WRITE). One 3-descriptor chain
 * at descriptors 0-2, made available in the next avail slot; rings the doorbell and waits for
 * the MSI-X interrupt. */
request:
        QUEUE_REQUEST
        /* The doorbell: a 16-bit write of the queue index (0), in whichever space the
         * notify capability's BAR is. */
        xor eax, eax
        cmp byte ptr [rip + notify_is_io], 0
        jne 3f
        mov word ptr [r15], ax
        jmp 4f
3:      mov edx, r15d
        out dx, ax
4:      cli                                     /* sti; hlt below: no wake-up can slip between them */
        cmp dword ptr [rip + interrupts], r14d
        jne 5f
        sti
        hlt
        jmp 4b
5:      movzx eax, word ptr [USED + 2]
        cmp eax, r13d
        jne fail31
        cmp byte ptr [STATUS_BYTE], 0
        jne fail32
        ret

/* With MSI-X each vector has one meaning, so there is no ISR status to read: count, EOI. */
handler:
        push rax
        lock inc dword ptr [rip + interrupts]
        mov eax, LAPIC_BASE + LAPIC_EOI
        mov dword ptr [rax], 0
        pop rax
        iretq

/* ---- Configuration-space access (mechanism #1) for the device r12d selects. ------------ */

/* cfg_select: points CONFIG_ADDRESS at the dword holding register ecx and leaves in dx the
 * CONFIG_DATA port of the register's byte lane (0xCFC + ecx % 4). Clobbers eax. */
cfg_select:
        mov eax, ecx
        and eax, 0xfc
        or eax, r12d
        mov dx, PCI_CONFIG_ADDRESS
        out dx, eax                             /* CONFIG_ADDRESS takes 32-bit writes only */
        mov edx, ecx
        and edx, 3
        add edx, PCI_CONFIG_DATA
        ret

/* cfg_readN: eax = the N-bit register at ecx (zero-extended). Clobber edx. */
cfg_read32:
        call cfg_select
        in eax, dx
        ret
cfg_read16:
        call cfg_select
        in ax, dx
        movzx eax, ax
        ret
cfg_read8:
        call cfg_select
        in al, dx
        movzx eax, al
        ret

/* cfg_write16: the 16-bit register at ecx = si. Clobbers eax, edx. */
cfg_write16:
        call cfg_select
        mov eax, esi
        out dx, ax
        ret

/* vcap_address: for the virtio capability at ebx, rax = its BAR's address + its offset and
 * edx = 1 if that BAR is an I/O BAR (0 for memory). Fails (25) on an unassigned BAR.
 * Clobbers ecx, rsi. */
vcap_address:
        lea ecx, [ebx + VCAP_BAR]
        call cfg_read8
        mov esi, eax                            /* esi = BAR index (checked <= 5 in the walk) */
        lea ecx, [ebx + VCAP_OFFSET]
        call cfg_read32                         /* eax = offset inside the BAR */
        lea rcx, [rip + bar_base]
        mov rcx, qword ptr [rcx + rsi * 8]
        test rcx, rcx
        jz fail25
        add rax, rcx
        lea rcx, [rip + bar_is_io]
        movzx edx, byte ptr [rcx + rsi]
        ret

fail21: EXIT 21
fail22: EXIT 22
fail23: EXIT 23
fail24: EXIT 24
fail25: EXIT 25
fail26: EXIT 26
fail27: EXIT 27
fail28: EXIT 28
fail29: EXIT 29
fail30: EXIT 30
fail31: EXIT 31
fail32: EXIT 32
fail33: EXIT 33

        IDT_STORAGE
/* What the driver learned (in .bss: zero at start, and 0 means "not found"). */
        .balign 8
bar_base:           .skip 6 * 8     /* each BAR's address (0: unassigned or the high half of a 64-bit BAR) */
notify_base:        .skip 8
bar_is_io:          .skip 6         /* 1 for an I/O BAR */
notify_is_io:       .skip 1
        .balign 4
notify_multiplier:  .skip 4
cap_common:         .skip 4         /* config-space offsets of the capabilities we use */
cap_notify:         .skip 4
cap_msix:           .skip 4
interrupts:         .skip 4
