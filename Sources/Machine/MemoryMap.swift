/// Every fixed guest-physical address and port of the Apus board, in one place.
///
/// ```
/// 0x0000_0500  GDT (null, null, code64 @0x10, data @0x18)
/// 0x0000_7000  zero page (boot_params) for Linux
/// 0x0000_9000  PML4, then PDPT @0xA000 and four PDs @0xB000..0xEFFF (identity map of 4 GiB, 2 MiB pages)
/// 0x0002_0000  kernel command line
/// 0x0008_0000  top of the bare-metal guests' stacks (8 KiB per vCPU, growing down)
/// 0x0010_0000  bare-metal guest image / protected-mode kernel (1 MiB)
/// ...          RAM up to min(memory, 3 GiB)
/// 0xC000_0000  32-bit MMIO hole: boot timer, test devices (0xD000_0000), virtio-mmio slots
///              (0xD100_0000), PCI ECAM (0xE000_0000, bus 0), PCI BARs (0xE100_0000–0xFDFF_FFFF)
/// 0xFEC0_0000  IOAPIC (in-kernel)      0xFEE0_0000  LAPIC (in-kernel)
/// 0xFFFB_C000  VMX identity-map page   0xFFFB_D000  VMX TSS (3 pages)
/// 0x1_0000_0000  RAM above the hole, when memory > 3 GiB
/// ```
public enum MemoryMap {
    // Low memory used by the VMM to start the CPU.
    public static let gdt: UInt64 = 0x500
    public static let zeroPage: UInt64 = 0x7000
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xA000
    public static let pageDirectories: UInt64 = 0xB000   // four pages: 0xB000..0xEFFF
    public static let commandLine: UInt64 = 0x2_0000
    public static let commandLineMax: UInt64 = 0x1_0000
    public static let bareStackTop: UInt64 = 0x8_0000
    public static let bareStackPerCPU: UInt64 = 0x2000
    /// As many vCPUs as have a stack between the page tables and `bareStackTop`: more would
    /// put a stack over the page tables (or below address 0).
    public static let bareMaxCPUs = Int((bareStackTop - (pageDirectories + 0x4000)) / bareStackPerCPU)
    public static let bareImage: UInt64 = 0x10_0000
    /// Bytes identity-mapped by the boot page tables (all of the 32-bit space).
    public static let identityMapped: UInt64 = 4 << 30

    // GDT selectors (boot.rst asks for __BOOT_CS 0x10 and __BOOT_DS 0x18).
    public static let codeSelector: UInt16 = 0x10
    public static let dataSelector: UInt16 = 0x18

    // The 32-bit hole.
    public static let mmioHoleStart: UInt64 = 0xC000_0000
    public static let mmioHoleEnd: UInt64 = 0x1_0000_0000
    public static let ioapic: UInt64 = 0xFEC0_0000
    public static let lapic: UInt64 = 0xFEE0_0000
    public static let identityMapPage: UInt64 = 0xFFFB_C000
    public static let tss: UInt64 = 0xFFFB_D000
    public static let highRAMStart: UInt64 = 0x1_0000_0000

    /// The RAM ranges for `size` bytes of guest memory: below the hole first, the rest above 4 GiB.
    public static func ramRanges(size: UInt64) -> [(start: UInt64, size: UInt64)] {
        let low = min(size, mmioHoleStart)
        var ranges = [(start: UInt64(0), size: low)]
        if size > low { ranges.append((start: highRAMStart, size: size - low)) }
        return ranges
    }

    /// ACPI tables (the RSDP first) and the MP table live in the old BIOS area, marked reserved.
    public static let acpiTables: UInt64 = 0xE_0000
    public static let mpTable: UInt64 = 0xF_0000
    public static let biosAreaEnd: UInt64 = 0x10_0000
    /// Top of conventional memory; the EBDA would start here on a PC.
    public static let conventionalEnd: UInt64 = 0x9_FC00

    /// Legacy I/O ports.
    public enum Port {
        public static let com1: UInt16 = 0x3F8
        public static let com1IRQ: UInt32 = 4
        /// The debug-exit port: a written byte becomes Apus's exit status.
        public static let debugExit: UInt16 = 0x501
    }

    public enum PowerPorts {
        /// `AcpiPowerDevice`: sleep control, sleep status, reset.
        public static let base: UInt16 = 0x600
        /// The i8042 command/status port.
        public static let i8042Command: UInt16 = 0x64
        /// The interrupt of the ACPI power button's Generic Event Device: IRQ 9, the SCI's line
        /// on a PC, which a hardware-reduced board (no SCI) leaves free.
        public static let powerButtonGSI: UInt32 = 9
    }

    /// virtio-mmio devices: one 4 KiB slot each from here; each takes an IOAPIC pin from the
    /// interrupt router (pins above the ISA range, so they never collide with legacy devices).
    public enum VirtioMMIOSlots {
        public static let base: UInt64 = 0xD100_0000
        public static let slotSize: UInt64 = 0x1000
        public static let count = 8
    }

    /// The PCI root complex: configuration mechanism #1, ECAM for bus 0, and the windows the
    /// firmware tables give the host bridge for BARs (Apus places BARs there; the guest may
    /// move them inside).
    public enum PCI {
        public static let configPorts: UInt16 = 0xCF8
        public static let configPortsLength: UInt64 = 8
        public static let ecam: UInt64 = 0xE000_0000
        public static let ecamBuses: UInt64 = 1
        public static let mmioWindowBase: UInt64 = 0xE100_0000
        public static let mmioWindowSize: UInt64 = 0xFE00_0000 - 0xE100_0000
        public static let ioWindowBase: UInt64 = 0xC000
        public static let ioWindowSize: UInt64 = 0x4000
        /// A 64-bit window above RAM, described to the guest (no Apus BAR uses it yet), at 64 GiB
        /// or above the end of RAM, whichever is higher.
        public static func mmio64Window(ramEnd: UInt64) -> (base: UInt64, size: UInt64) {
            let gib: UInt64 = 1 << 30
            return (max(64 * gib, (ramEnd + gib - 1) & ~(gib - 1)), 64 * gib)
        }
    }

    /// Platform MMIO devices at the bottom of the hole.
    public enum Platform {
        /// `BootTimer`: the guest's init writes any value here when it starts (`devmem` in the
        /// demo initramfs; the Debian kernel has no /dev/port).
        public static let bootTimer: UInt64 = 0xC000_0000
        public static let bootTimerLength: UInt64 = 0x1000
    }

    /// The test devices of the bare-metal board (used by `guest/bare` and `apus bench exits`).
    /// `guest/bare/board.inc` repeats these numbers for the assembler: keep both in step.
    public enum TestBoard {
        /// `ProbeDevice` on port I/O: ECHO at +0, REPORT at +8, null registers elsewhere.
        public static let probePort: UInt16 = 0x510
        public static let probePortLength: UInt64 = 0x10
        /// `ProbeDevice` on MMIO.
        public static let probeMMIO: UInt64 = 0xD000_0000
        public static let probeMMIOLength: UInt64 = 0x1000
        /// Doorbells served by ioeventfds (an `AccessCounter` sits behind each on the bus).
        public static let doorbellPort: UInt16 = 0x520            // PIO, 4-byte writes
        public static let doorbellFastMMIO: UInt64 = 0xD000_1000   // MMIO, length 0 ("fast MMIO")
        public static let doorbellMMIOMatch: UInt64 = 0xD000_1100  // MMIO, 4 bytes, datamatch 1
        public static let doorbellMMIO: UInt64 = 0xD000_1200       // MMIO, 4 bytes, any value
        public static let doorbellInterrupt: UInt64 = 0xD000_1300  // fast MMIO; the I/O thread answers with an MSI
        public static let doorbellMatchValue: UInt64 = 1
        /// The MSI the interrupt doorbell raises: vector 0x40 to APIC 0, through irqfd on GSI 24.
        public static let interruptVector: UInt8 = 0x40
        public static let interruptGSI: UInt32 = 24
    }
}
