import CKVM
import GuestMemory
import KVM

/// Puts a vCPU straight into 64-bit long mode, so guests never run 16/32-bit code (which KVM
/// may have to emulate slowly): a flat GDT, identity page tables for the low 4 GiB, and the
/// control registers that switch paging and long mode on.
public enum LongMode {
    // Segment descriptors: flat 64-bit code (L=1, P, DPL 0, type execute/read) and flat data.
    static let nullDescriptor: UInt64 = 0
    static let code64Descriptor: UInt64 = 0x00AF_9B00_0000_FFFF
    static let dataDescriptor: UInt64 = 0x00CF_9300_0000_FFFF

    static let cr0ProtectionEnable: UInt64 = 1 << 0
    static let cr0ExtensionType: UInt64 = 1 << 4
    static let cr0Paging: UInt64 = 1 << 31
    static let cr4PAE: UInt64 = 1 << 5
    static let eferLME: UInt64 = 1 << 8
    static let eferLMA: UInt64 = 1 << 10

    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let pageSize2M: UInt64 = 1 << 7

    /// Writes the GDT and the identity-mapping page tables into guest memory.
    public static func writeTables(into memory: GuestMemory) throws(GuestMemoryError) {
        let gdt = [nullDescriptor, nullDescriptor, code64Descriptor, dataDescriptor]
        for (i, d) in gdt.enumerated() {
            try memory.store(d, at: GuestAddress(MemoryMap.gdt + UInt64(i * 8)))
        }
        try memory.zero(GuestAddress(MemoryMap.pml4), count: 0x1000)
        try memory.zero(GuestAddress(MemoryMap.pdpt), count: 0x1000)
        try memory.store(MemoryMap.pdpt | present | writable, at: GuestAddress(MemoryMap.pml4))
        let gigabytes = Int(MemoryMap.identityMapped >> 30)
        for g in 0..<gigabytes {
            let pd = MemoryMap.pageDirectories + UInt64(g) * 0x1000
            try memory.store(pd | present | writable, at: GuestAddress(MemoryMap.pdpt + UInt64(g * 8)))
            for i in 0..<512 {
                let frame = (UInt64(g) << 30) | (UInt64(i) << 21)
                try memory.store(frame | present | writable | pageSize2M, at: GuestAddress(pd + UInt64(i * 8)))
            }
        }
    }

    /// The special registers for long mode with the tables from `writeTables`.
    public static func specialRegisters(from current: kvm_sregs) -> kvm_sregs {
        var s = current
        let code = kvm_segment(base: 0, limit: 0xFFFF_FFFF, selector: MemoryMap.codeSelector, type: 0xB,
                               present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0, padding: 0)
        let data = kvm_segment(base: 0, limit: 0xFFFF_FFFF, selector: MemoryMap.dataSelector, type: 0x3,
                               present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0)
        s.cs = code
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.gdt.base = MemoryMap.gdt
        s.gdt.limit = 4 * 8 - 1
        s.cr3 = MemoryMap.pml4
        s.cr4 = cr4PAE
        s.cr0 = cr0ProtectionEnable | cr0ExtensionType | cr0Paging
        s.efer = eferLME | eferLMA
        return s
    }

    /// Enters long mode at `entry` with stack `stack` and the given argument registers.
    public static func enter(_ vcpu: VCPU, entry: UInt64, stack: UInt64, rsi: UInt64 = 0, rdi: UInt64 = 0) throws(KVMError) {
        try vcpu.setSpecialRegisters(specialRegisters(from: vcpu.specialRegisters()))
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsp = stack
        regs.rbp = stack
        regs.rsi = rsi
        regs.rdi = rdi
        regs.rflags = 0x2  // bit 1 is reserved-one; interrupts off
        try vcpu.setRegisters(regs)
    }
}
