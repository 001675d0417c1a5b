/* hostile-pci: a malicious driver attacks the virtio-pci transport of Apus's virtio-blk (and
 * the rest of bus 0): configuration-space and register garbage of every size, the virtio
 * state machine out of order, the pci_cfg window, a broken ring, and BARs moved under a live
 * device. After each attack it resets the device and proves it still works (a sector written
 * and read back, polled: no interrupts are needed, so none are enabled).
 *
 * Like guest/bare/virtio-pci.S it finds its device the way a driver must: a mechanism #1 scan
 * of bus 0 for 1AF4:1042 (modern) or 1AF4:1001 (transitional), the BARs, and the virtio
 * capabilities — so the same guest attacks a modern device, one whose notify structure is in
 * an I/O BAR (--notify pio), and a transitional one with its legacy header in I/O BAR0.
 * A virtio-rng on the same bus is the neighbour some attacks hit.
 *
 * Exit status (see hostile.inc): 0 when every attack was survived; N when attack N did not end
 * the way it must; 100 + N when the device did not work after attack N's reset.
 *   1  find virtio-blk and virtio-rng, their BARs and capabilities; a sector each way
 *      configuration-space garbage (then every BAR and Command are put back, MSI-X off):
 *   2  mechanism #1: CONFIG_ADDRESS written with bytes and words (ignored: only dwords
 *      count), CONFIG_DATA read across its dword (all ones); every dword of every function
 *      of every slot read; every offset of the host bridge, virtio-blk, virtio-rng and an empty slot
 *      read and written (all ones, 0xA5, zero) with 1, 2 and 4 bytes
 *   3  ECAM: every offset of virtio-blk's 4 KiB read with 1, 2, 4 and 8 bytes, and the
 *      first 0x110 bytes written with garbage of every size
 *      register garbage of every size (see `garble`) in every region of every BAR:
 *   4  BAR1: the MSI-X table and the pending-bit array (MSI-X disabled: nothing fires)
 *   5  BAR2: the common configuration
 *   6  BAR2: ISR, device configuration, notify, and the gaps between them
 *   7  the notify structure's I/O BAR (with --notify pio) and the ports after it, with
 *      every size
 *   8  the legacy header in I/O BAR0 (transitional device), as ports of every size
 *      the virtio state machine out of order (virtio 1.2 §3.1.1, §4.1.4.3):
 *   9  DRIVER_OK before FEATURES_OK is ignored
 *  10  FEATURES_OK with a feature the device does not offer is refused (reads back clear)
 *  11  FEATURES_OK without VERSION_1 is refused
 *  12  queue_select 0xFFFF / 7: queue_size reads 0, writes to the queue fields go nowhere
 *  13  MSI-X vectors beyond the table read back NO_VECTOR
 *  14  an enabled queue's address cannot be changed
 *  15  driver features written after FEATURES_OK are ignored
 *  16  DRIVER_OK with a queue size of 3: DEVICE_NEEDS_RESET
 *      the pci_cfg capability (a window into the BARs through configuration space):
 *  17  device_status written and read through it: a reset, then ACKNOWLEDGE
 *  18  windows the spec does not allow (length 3, misaligned, BAR 9) read 0, write nothing
 *  19  a descriptor loop on the ring: DEVICE_NEEDS_RESET
 *  20  BAR2 moved while the device runs: the doorbell follows, a sector each way there
 *  21  BAR2 placed over the virtio-rng's BAR2 (the rng now answers there, and KVM refuses a
 *      second doorbell on the same address), rung 1000 times, then moved home */
#include "hostile.inc"

#define PCI_CONFIG_ADDRESS  0xcf8
#define PCI_CONFIG_DATA     0xcfc
#define PCI_ENABLE          0x80000000
#define PCI_ECAM            0xe0000000  /* bus 0: device d at + d << 15 */
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_BAR0            0x10
#define PCI_CAP_POINTER     0x34
#define VIRTIO_BLK_MODERN        0x10421af4
#define VIRTIO_BLK_TRANSITIONAL  0x10011af4
#define VIRTIO_RNG_MODERN        0x10441af4
#define VIRTIO_RNG_TRANSITIONAL  0x10051af4
#define CAP_ID_VENDOR       0x09
#define CAP_ID_MSIX         0x11
#define VCAP_CFG_TYPE       3
#define VCAP_BAR            4
#define VCAP_OFFSET         8
#define VCAP_LENGTH         12
#define VCAP_NOTIFY_MULT    16
#define VCAP_PCI_CFG_DATA   16
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
#define BLKQ                0x200000
#define QSIZE               32
#define MOVED_BAR2          0xf0000000  /* free, inside Apus's PCI window */

        .section .text.start
        .globl _start
_start:
/* ---- 1. Find the devices. ---------------------------------------------------------------- */
        STEP 1
        call discover
        call reset_and_check

/* ---- 2–3. Configuration-space garbage. --------------------------------------------------- */
        STEP 2
        /* CONFIG_ADDRESS takes dwords only: byte and word writes leave it alone. */
        mov eax, dword ptr [rip + blk_fn]
        mov dx, PCI_CONFIG_ADDRESS
        out dx, eax
        mov al, 0x5a
        out dx, al
        mov dx, PCI_CONFIG_ADDRESS + 2
        mov ax, 0x1234
        out dx, ax
        mov dx, PCI_CONFIG_ADDRESS + 3
        mov al, 0
        out dx, al
        mov dx, PCI_CONFIG_ADDRESS
        in eax, dx
        cmp eax, dword ptr [rip + blk_fn]
        jne fail
        /* A dword read of CONFIG_DATA that does not fit its dword reads all ones. */
        mov dx, PCI_CONFIG_DATA + 1
        in eax, dx
        cmp eax, 0xffffffff
        jne fail
        /* Every dword of every slot. */
        xor ebx, ebx
1:      mov eax, ebx
        or eax, PCI_ENABLE
        mov dx, PCI_CONFIG_ADDRESS
        out dx, eax
        mov dx, PCI_CONFIG_DATA
        in eax, dx
        add ebx, 4
        cmp ebx, 32 << 11
        jb 1b
        /* Every offset and size of four functions, read and written. */
        call save_functions
        mov esi, PCI_ENABLE                     /* slot 0: the host bridge */
        call config_garbage
        mov esi, dword ptr [rip + blk_fn]
        call config_garbage
        mov esi, dword ptr [rip + rng_fn]
        call config_garbage
        mov esi, PCI_ENABLE | 31 << 11          /* slot 31: empty */
        call config_garbage
        call restore_functions
        call reset_and_check

        STEP 3
        call save_functions
        mov r8d, dword ptr [rip + blk_fn]       /* ECAM address: slot << 15 */
        and r8d, 31 << 11
        shl r8, 4
        mov rax, PCI_ECAM
        add r8, rax
        xor ecx, ecx
1:      mov al, byte ptr [r8 + rcx]             /* reads of the whole 4 KiB, every size */
        mov ax, word ptr [r8 + rcx]
        mov eax, dword ptr [r8 + rcx]
        mov rax, qword ptr [r8 + rcx]
        inc ecx
        cmp ecx, 0x1000
        jb 1b
        mov esi, 0x110                          /* writes: the header, capabilities, past 256 */
        call garble
        call restore_functions
        call reset_and_check

/* ---- 4–8. Register garbage in every BAR. -------------------------------------------------- */
        STEP 4
        mov r8, qword ptr [rip + bar_base + 1 * 8]
        mov esi, 0x48                           /* the table (the first entries and beyond) */
        call garble
        add r8, 0x800
        mov esi, 0x48                           /* the PBA */
        call garble
        call mask_msix_table
        call reset_and_check

        STEP 5
        mov r8, qword ptr [rip + common]
        mov esi, 0x48                           /* 0x40 bytes, and a little past the end */
        call garble
        call reset_and_check

        STEP 6
        mov r8, qword ptr [rip + bar_base + 2 * 8]
        mov esi, 0x48                           /* past the common configuration */
        add r8, 0x40
        call garble
        mov r8, qword ptr [rip + bar_base + 2 * 8]
        add r8, 0x1000 - 8                      /* around the ISR byte */
        mov esi, 0x18
        call garble
        mov r8, qword ptr [rip + bar_base + 2 * 8]
        add r8, 0x2000                          /* the device configuration */
        mov esi, 0x108
        call garble
        mov r8, qword ptr [rip + bar_base + 2 * 8]
        add r8, 0x3000                          /* the notify area (memory; with --notify pio, nothing) */
        mov esi, 0x108
        call garble
        mov r8, qword ptr [rip + bar_base + 2 * 8]
        add r8, 0x4000 - 0x48                   /* the end of the BAR */
        mov esi, 0x48
        call garble
        call reset_and_check

        STEP 7
        cmp byte ptr [rip + notify_is_io], 0
        je 1f
        mov edx, dword ptr [rip + notify_base]
        mov esi, 8
        call garble_ports
1:      call reset_and_check

        STEP 8
        cmp byte ptr [rip + bar_is_io + 0], 0   /* a transitional device's legacy header */
        je 1f
        mov edx, dword ptr [rip + bar_base + 0 * 8]
        mov esi, 0x100
        call garble_ports
1:      call reset_and_check

/* ---- 9–16. The state machine out of order. ------------------------------------------------ */
        STEP 9
        call pci_reset
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_DRIVER_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_DRIVER_OK
        jnz fail
        call reset_and_check

        STEP 10
        call pci_reset
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 1
        mov dword ptr [r8 + C_DRIVER_FEATURE], 0x80000001   /* VERSION_1 and bit 63 */
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_FEATURES_OK
        jnz fail
        call reset_and_check

        STEP 11
        call pci_reset
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_FEATURES_OK
        jnz fail
        call reset_and_check

        STEP 12
        call pci_begin
        mov word ptr [r8 + C_QUEUE_SELECT], 0xffff
        call queue_is_absent
        mov word ptr [r8 + C_QUEUE_SELECT], 7
        call queue_is_absent
        call reset_and_check

        STEP 13
        call pci_begin
        mov word ptr [r8 + C_CONFIG_MSIX_VECTOR], 0x7ff
        cmp word ptr [r8 + C_CONFIG_MSIX_VECTOR], NO_VECTOR
        jne fail
        mov word ptr [r8 + C_QUEUE_SELECT], 0
        mov word ptr [r8 + C_QUEUE_MSIX_VECTOR], 0x7ff
        cmp word ptr [r8 + C_QUEUE_MSIX_VECTOR], NO_VECTOR
        jne fail
        call reset_and_check

        STEP 14
        call pci_begin
        xor ecx, ecx
        mov edx, QSIZE
        call pci_queue                          /* enabled */
        mov dword ptr [r8 + C_QUEUE_DESC], 0x1000
        lea rax, [rbx + Q_DESC]
        cmp dword ptr [r8 + C_QUEUE_DESC], eax
        jne fail
        call reset_and_check

        STEP 15
        call pci_begin                          /* FEATURES_OK with VERSION_1 | INDIRECT_DESC */
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 0
        mov dword ptr [r8 + C_DRIVER_FEATURE], 0xffffffff
        cmp dword ptr [r8 + C_DRIVER_FEATURE], 1 << 28
        jne fail
        call reset_and_check

        STEP 16
        call pci_begin
        xor ecx, ecx
        mov edx, QSIZE
        call pci_queue_fields                   /* everything but queue_enable */
        mov word ptr [r8 + C_QUEUE_SIZE], 3
        mov word ptr [r8 + C_QUEUE_ENABLE], 1
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_NEEDS_RESET
        jz fail
        call reset_and_check

/* ---- 17–18. The pci_cfg window. ----------------------------------------------------------- */
        STEP 17
        call pci_begin                          /* status 0x0B, through the common config */
        mov esi, 2                              /* window: BAR2, device_status, 1 byte */
        mov edi, C_DEVICE_STATUS
        mov r9d, 1
        call pcicfg_window
        call pcicfg_read
        cmp al, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        jne fail
        xor esi, esi                            /* reset through configuration space */
        call pcicfg_write
        mov r8, qword ptr [rip + common]
        cmp byte ptr [r8 + C_DEVICE_STATUS], 0
        jne fail
        mov esi, S_ACKNOWLEDGE
        call pcicfg_write
        cmp byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE
        jne fail
        call reset_and_check

        STEP 18
        call pci_begin
        mov esi, 2                              /* length 3 */
        mov edi, C_DEVICE_STATUS
        mov r9d, 3
        call pcicfg_bad
        mov esi, 2                              /* 2 bytes at an odd offset */
        mov edi, C_DEVICE_STATUS + 1
        mov r9d, 2
        call pcicfg_bad
        mov esi, 9                              /* no BAR 9 */
        mov edi, C_DEVICE_STATUS
        mov r9d, 1
        call pcicfg_bad
        mov r8, qword ptr [rip + common]
        cmp byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        jne fail                                /* none of them reached the status */
        call reset_and_check

/* ---- 19. A broken ring, over virtio-pci. -------------------------------------------------- */
        STEP 19
        call blk_start
        DESC rbx+Q_DESC, 0, rbx, 16, F_NEXT, 0
        xor eax, eax
        call publish
        call notify
        call wait_needs_reset
        call reset_and_check

/* ---- 20–21. BARs moved under a live device. ----------------------------------------------- */
        STEP 20
        mov rbx, BLKQ
        mov esi, MOVED_BAR2
        call move_bar2
        call reset_and_check                    /* finds the doorbell at the new place */
        mov esi, dword ptr [rip + home_bar2]
        call move_bar2
        call reset_and_check

        STEP 21
        call blk_start
        mov esi, dword ptr [rip + rng_bar2]     /* onto the neighbour's BAR */
        call move_bar2
        mov r12d, 1000                          /* ring "our" doorbell there */
1:      call notify
        dec r12d
        jnz 1b
        mov esi, dword ptr [rip + home_bar2]
        call move_bar2
        call reset_and_check

        EXIT 0

/* ---- The driver side of virtio-pci. -------------------------------------------------------- */

read_status:
        movzx eax, byte ptr [r8 + C_DEVICE_STATUS]
        ret

/* pci_reset: r8 = virtio-blk's common configuration; device_status 0, which must read back 0. */
pci_reset:
        mov r8, qword ptr [rip + common]
        mov rbx, BLKQ
        mov byte ptr [r8 + C_DEVICE_STATUS], 0
        cmp byte ptr [r8 + C_DEVICE_STATUS], 0
        jne fail
        ret

/* pci_begin: reset, ACKNOWLEDGE, DRIVER, VERSION_1 | INDIRECT_DESC, FEATURES_OK. */
pci_begin:
        call pci_reset
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov dword ptr [r8 + C_DEVICE_FEATURE_SELECT], 1
        test dword ptr [r8 + C_DEVICE_FEATURE], 1
        jz fail
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 0
        mov dword ptr [r8 + C_DRIVER_FEATURE], 1 << 28
        mov dword ptr [r8 + C_DRIVER_FEATURE_SELECT], 1
        mov dword ptr [r8 + C_DRIVER_FEATURE], 1
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        test byte ptr [r8 + C_DEVICE_STATUS], S_FEATURES_OK
        jz fail
        ret

/* pci_queue_fields: queue ecx with edx entries in area rbx (cleared), no MSI-X vector, and
 * its doorbell (notify base + queue_notify_off * multiplier) — all but queue_enable. */
pci_queue_fields:
        mov dword ptr [rbx + Q_INDEX], ecx
        mov dword ptr [rbx + Q_SIZE], edx
        call ring_zero
        mov eax, dword ptr [rbx + Q_INDEX]
        mov word ptr [r8 + C_QUEUE_SELECT], ax
        mov eax, dword ptr [rbx + Q_SIZE]
        cmp word ptr [r8 + C_QUEUE_SIZE], ax
        jb fail
        mov word ptr [r8 + C_QUEUE_SIZE], ax
        mov word ptr [r8 + C_QUEUE_MSIX_VECTOR], NO_VECTOR
        lea rax, [rbx + Q_DESC]
        mov dword ptr [r8 + C_QUEUE_DESC], eax
        mov dword ptr [r8 + C_QUEUE_DESC + 4], 0
        lea rax, [rbx + Q_AVAIL]
        mov dword ptr [r8 + C_QUEUE_DRIVER], eax
        mov dword ptr [r8 + C_QUEUE_DRIVER + 4], 0
        lea rax, [rbx + Q_USED]
        mov dword ptr [r8 + C_QUEUE_DEVICE], eax
        mov dword ptr [r8 + C_QUEUE_DEVICE + 4], 0
        movzx eax, word ptr [r8 + C_QUEUE_NOTIFY_OFF]
        imul eax, dword ptr [rip + notify_mult]
        add rax, qword ptr [rip + notify_base]
        mov qword ptr [rbx + Q_NOTIFY], rax
        movzx eax, byte ptr [rip + notify_is_io]
        add eax, NOTIFY_MMIO16                  /* 1: memory, 2: port */
        mov byte ptr [rbx + Q_NOTIFY_KIND], al
        ret

pci_queue:
        call pci_queue_fields
        mov word ptr [r8 + C_QUEUE_ENABLE], 1
        ret

/* blk_start: a fresh start of virtio-blk with queue 0 in BLKQ. */
blk_start:
        call pci_begin
        xor ecx, ecx
        mov edx, QSIZE
        call pci_queue
        mov byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        cmp byte ptr [r8 + C_DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        jne fail
        ret

reset_and_check:
        call blk_start
        jmp blk_check

/* queue_is_absent: the selected queue does not exist: its size reads 0, its vector
 * NO_VECTOR, and writes to its fields change nothing. */
queue_is_absent:
        cmp word ptr [r8 + C_QUEUE_SIZE], 0
        jne fail
        mov word ptr [r8 + C_QUEUE_SIZE], 16
        mov dword ptr [r8 + C_QUEUE_DESC], 0x1000
        mov word ptr [r8 + C_QUEUE_ENABLE], 1
        cmp word ptr [r8 + C_QUEUE_SIZE], 0
        jne fail
        cmp dword ptr [r8 + C_QUEUE_DESC], 0
        jne fail
        cmp word ptr [r8 + C_QUEUE_ENABLE], 0
        jne fail
        cmp word ptr [r8 + C_QUEUE_MSIX_VECTOR], NO_VECTOR
        jne fail
        ret

/* mask_msix_table: every MSI-X entry of virtio-blk back to masked (after garbage). */
mask_msix_table:
        mov rdi, qword ptr [rip + msix_table]
        mov ecx, dword ptr [rip + msix_vectors]
1:      mov dword ptr [rdi + 12], 1
        add rdi, 16
        dec ecx
        jnz 1b
        ret

/* ---- pci_cfg: bar, offset and length select a window that pci_cfg_data reads and writes. -- */

/* pcicfg_window: bar esi, offset edi, length r9d. */
pcicfg_window:
        mov eax, dword ptr [rip + blk_fn]
        mov dword ptr [rip + cfg_fn], eax
        mov ecx, dword ptr [rip + cap_pcicfg]
        add ecx, VCAP_BAR
        call cfg_write8
        mov ecx, dword ptr [rip + cap_pcicfg]
        add ecx, VCAP_OFFSET
        mov esi, edi
        call cfg_write32
        mov ecx, dword ptr [rip + cap_pcicfg]
        add ecx, VCAP_LENGTH
        mov esi, r9d
        jmp cfg_write32

/* pcicfg_read: eax = pci_cfg_data. pcicfg_write: pci_cfg_data = esi. */
pcicfg_read:
        mov ecx, dword ptr [rip + cap_pcicfg]
        add ecx, VCAP_PCI_CFG_DATA
        jmp cfg_read32
pcicfg_write:
        mov ecx, dword ptr [rip + cap_pcicfg]
        add ecx, VCAP_PCI_CFG_DATA
        jmp cfg_write32

/* pcicfg_bad: a window the spec does not allow (bar esi, offset edi, length r9d) reads 0
 * and writing it (a reset, if it reached the status) does nothing. */
pcicfg_bad:
        call pcicfg_window
        call pcicfg_read
        test eax, eax
        jnz fail
        xor esi, esi
        jmp pcicfg_write

/* ---- Configuration space (mechanism #1) of the function cfg_fn selects. ------------------- */

cfg_select:                                     /* ecx = register; dx = its data port */
        mov eax, ecx
        and eax, 0xfc
        or eax, dword ptr [rip + cfg_fn]
        mov dx, PCI_CONFIG_ADDRESS
        out dx, eax
        mov edx, ecx
        and edx, 3
        add edx, PCI_CONFIG_DATA
        ret
cfg_read32:
        call cfg_select
        in eax, dx
        ret
cfg_read8:
        call cfg_select
        in al, dx
        movzx eax, al
        ret
cfg_write32:
        call cfg_select
        mov eax, esi
        out dx, eax
        ret
cfg_write16:
        call cfg_select
        mov eax, esi
        out dx, ax
        ret
cfg_write8:
        call cfg_select
        mov eax, esi
        out dx, al
        ret

/* config_garbage: the function esi (CONFIG_ADDRESS base), every offset of its 256 bytes, with
 * 1, 2 and 4 bytes wherever the access fits the dword: a read, then all ones, 0xA5 and zero. */
config_garbage:
        mov dword ptr [rip + cfg_fn], esi
        xor r10d, r10d                          /* r10d = offset */
1:      mov ecx, r10d
        call cfg_select
        in al, dx
        mov al, 0xff
        out dx, al
        mov al, 0xa5
        out dx, al
        xor eax, eax
        out dx, al
        test r10d, 1
        jnz 2f
        in ax, dx
        mov ax, 0xffff
        out dx, ax
        mov ax, 0xa5a5
        out dx, ax
        xor eax, eax
        out dx, ax
        test r10d, 3
        jnz 2f
        in eax, dx
        mov eax, 0xffffffff
        out dx, eax
        mov eax, 0xa5a5a5a5
        out dx, eax
        xor eax, eax
        out dx, eax
2:      inc r10d
        cmp r10d, 256
        jb 1b
        ret

/* save_functions / restore_functions: Command and the six BARs of virtio-blk and virtio-rng,
 * which configuration garbage moves, sizes and switches off. Restored BARs first, Command
 * last (so nothing decodes at a half-written address), and MSI-X off. */
save_functions:
        lea rdi, [rip + saved]
        mov eax, dword ptr [rip + blk_fn]
        call save_one
        mov eax, dword ptr [rip + rng_fn]
save_one:
        mov dword ptr [rip + cfg_fn], eax
        mov ecx, PCI_COMMAND
        call cfg_read32
        mov dword ptr [rdi], eax
        add rdi, 4
        mov ecx, PCI_BAR0
1:      push rcx
        call cfg_read32
        pop rcx
        mov dword ptr [rdi], eax
        add rdi, 4
        add ecx, 4
        cmp ecx, PCI_BAR0 + 24
        jb 1b
        ret

restore_functions:
        lea rdi, [rip + saved]
        mov eax, dword ptr [rip + blk_fn]
        call restore_one
        mov eax, dword ptr [rip + rng_fn]
restore_one:
        mov dword ptr [rip + cfg_fn], eax
        mov ecx, PCI_BAR0
1:      mov esi, dword ptr [rdi + 4]
        push rcx
        call cfg_write32
        pop rcx
        add rdi, 4
        add ecx, 4
        cmp ecx, PCI_BAR0 + 24
        jb 1b
        mov ecx, dword ptr [rip + cap_msix]     /* (the same layout on both functions) */
        add ecx, 2
        xor esi, esi
        call cfg_write16                        /* MSI-X Message Control: disabled */
        mov esi, dword ptr [rdi - 24]
        mov ecx, PCI_COMMAND
        call cfg_write16
        add rdi, 4
        ret

/* move_bar2: virtio-blk's BAR2 to address esi; the common configuration and the doorbells
 * (when in memory: the notify base, and queue rbx's Q_NOTIFY) move with it. */
move_bar2:
        push rsi
        mov eax, dword ptr [rip + blk_fn]
        mov dword ptr [rip + cfg_fn], eax
        mov ecx, PCI_BAR0 + 2 * 4
        call cfg_write32
        pop rsi
        mov rax, qword ptr [rip + bar_base + 2 * 8]
        mov qword ptr [rip + bar_base + 2 * 8], rsi
        sub rsi, rax                            /* how far it moved */
        add qword ptr [rip + common], rsi
        cmp byte ptr [rip + notify_is_io], 0
        jne 1f
        add qword ptr [rip + notify_base], rsi
        add qword ptr [rbx + Q_NOTIFY], rsi
1:      mov r8, qword ptr [rip + common]
        ret

/* garble_ports: port garbage: every port of [dx, dx + esi) read and written with 1, 2 and 4
 * bytes (all ones, 0xA5, zero). */
garble_ports:
        mov r10d, edx
        lea r11d, [edx + esi]
1:      mov edx, r10d
        in al, dx
        mov al, 0xff
        out dx, al
        mov al, 0xa5
        out dx, al
        xor eax, eax
        out dx, al
        in ax, dx
        mov ax, 0xffff
        out dx, ax
        mov ax, 0xa5a5
        out dx, ax
        xor eax, eax
        out dx, ax
        in eax, dx
        mov eax, 0xffffffff
        out dx, eax
        mov eax, 0xa5a5a5a5
        out dx, eax
        xor eax, eax
        out dx, eax
        inc r10d
        cmp r10d, r11d
        jb 1b
        ret

/* ---- Discovery, as virtio-pci.S does it (see there for the why of each step). ------------- */
discover:
        xor ebx, ebx
1:      mov eax, ebx
        shl eax, 11
        or eax, PCI_ENABLE
        mov dword ptr [rip + cfg_fn], eax
        xor ecx, ecx
        call cfg_read32
        mov edx, dword ptr [rip + cfg_fn]
        cmp eax, VIRTIO_BLK_MODERN
        je 2f
        cmp eax, VIRTIO_BLK_TRANSITIONAL
        je 2f
        cmp eax, VIRTIO_RNG_MODERN
        je 3f
        cmp eax, VIRTIO_RNG_TRANSITIONAL
        je 3f
        jmp 4f
2:      mov dword ptr [rip + blk_fn], edx
        jmp 4f
3:      mov dword ptr [rip + rng_fn], edx
4:      inc ebx
        cmp ebx, 32
        jb 1b
        cmp dword ptr [rip + blk_fn], 0
        je fail
        cmp dword ptr [rip + rng_fn], 0
        je fail

        /* The rng's BAR2 (for step 21), decoded like ours: a live neighbour, doorbells and all. */
        mov eax, dword ptr [rip + rng_fn]
        mov dword ptr [rip + cfg_fn], eax
        mov ecx, PCI_BAR0 + 2 * 4
        call cfg_read32
        and eax, ~0xf
        mov dword ptr [rip + rng_bar2], eax
        mov ecx, PCI_COMMAND
        mov esi, 7
        call cfg_write16

        /* virtio-blk's BARs. */
        mov eax, dword ptr [rip + blk_fn]
        mov dword ptr [rip + cfg_fn], eax
        xor ebx, ebx
5:      lea ecx, [PCI_BAR0 + ebx * 4]
        call cfg_read32
        lea rdi, [rip + bar_base]
        lea rsi, [rip + bar_is_io]
        test eax, 1
        jz 6f
        and eax, ~0x3
        mov qword ptr [rdi + rbx * 8], rax
        mov byte ptr [rsi + rbx], 1
        jmp 7f
6:      and eax, ~0xf                           /* (Apus's BARs are 32-bit) */
        mov qword ptr [rdi + rbx * 8], rax
7:      inc ebx
        cmp ebx, 6
        jb 5b
        mov eax, dword ptr [rip + bar_base + 2 * 8]
        mov dword ptr [rip + home_bar2], eax
        mov ecx, PCI_COMMAND                    /* I/O, memory, bus master */
        mov esi, 7
        call cfg_write16

        /* The capabilities: the first of each kind. */
        mov ecx, PCI_CAP_POINTER
        call cfg_read8
        mov ebx, eax
        mov r13d, 48
8:      and ebx, 0xfc
        jz 11f
        dec r13d
        jz 11f
        mov ecx, ebx
        call cfg_read8
        cmp eax, CAP_ID_MSIX
        jne 9f
        mov dword ptr [rip + cap_msix], ebx
        jmp 10f
9:      cmp eax, CAP_ID_VENDOR
        jne 10f
        lea ecx, [ebx + VCAP_CFG_TYPE]
        call cfg_read8
        cmp eax, 5
        ja 10f
        lea rdi, [rip + caps]                   /* caps[cfg_type] = offset, if still 0 */
        cmp dword ptr [rdi + rax * 4], 0
        jne 10f
        mov dword ptr [rdi + rax * 4], ebx
10:     lea ecx, [ebx + 1]
        call cfg_read8
        mov ebx, eax
        jmp 8b
11:     cmp dword ptr [rip + cap_common], 0
        je fail
        cmp dword ptr [rip + cap_notify], 0
        je fail
        cmp dword ptr [rip + cap_pcicfg], 0
        je fail
        cmp dword ptr [rip + cap_msix], 0
        je fail

        mov ebx, dword ptr [rip + cap_common]
        call vcap_address
        test edx, edx
        jnz fail
        mov qword ptr [rip + common], rax
        mov ebx, dword ptr [rip + cap_notify]
        call vcap_address
        mov qword ptr [rip + notify_base], rax
        mov byte ptr [rip + notify_is_io], dl
        lea ecx, [ebx + VCAP_NOTIFY_MULT]
        call cfg_read32
        mov dword ptr [rip + notify_mult], eax

        /* The MSI-X table: its BAR and offset, and how many vectors. */
        mov ebx, dword ptr [rip + cap_msix]
        mov ecx, ebx
        call cfg_read32                         /* ID, next, and Message Control in 31:16 */
        shr eax, 16
        and eax, 0x7ff
        inc eax
        mov dword ptr [rip + msix_vectors], eax
        lea ecx, [ebx + 4]
        call cfg_read32
        mov ecx, eax
        and ecx, 7
        and eax, ~7
        lea rsi, [rip + bar_base]
        add rax, qword ptr [rsi + rcx * 8]
        mov qword ptr [rip + msix_table], rax
        ret

/* vcap_address: rax = the BAR address + offset of the virtio capability at ebx, edx = 1 if
 * the BAR is I/O. */
vcap_address:
        lea ecx, [ebx + VCAP_BAR]
        call cfg_read8
        cmp eax, 5
        ja fail
        mov esi, eax
        lea ecx, [ebx + VCAP_OFFSET]
        call cfg_read32
        lea rcx, [rip + bar_base]
        mov rcx, qword ptr [rcx + rsi * 8]
        test rcx, rcx
        jz fail
        add rax, rcx
        lea rcx, [rip + bar_is_io]
        movzx edx, byte ptr [rcx + rsi]
        ret

        .section .bss
        .balign 8
bar_base:       .skip 6 * 8
common:         .skip 8
notify_base:    .skip 8
msix_table:     .skip 8
saved:          .skip 2 * 7 * 4         /* Command and BAR0–5 of two functions */
caps:           .skip 6 * 4             /* by cfg_type: 1 common, 2 notify, 3 ISR, 4 device, 5 pci_cfg */
        .set cap_common, caps + 1 * 4
        .set cap_notify, caps + 2 * 4
        .set cap_pcicfg, caps + 5 * 4
cap_msix:       .skip 4
msix_vectors:   .skip 4
notify_mult:    .skip 4
blk_fn:         .skip 4                 /* CONFIG_ADDRESS bases */
rng_fn:         .skip 4
cfg_fn:         .skip 4                 /* the function cfg_* address */
rng_bar2:       .skip 4
home_bar2:      .skip 4
bar_is_io:      .skip 6
notify_is_io:   .skip 1
