import CKVM
import KVM

/// Per-vCPU configuration every guest needs before its first `KVM_RUN`: CPUID, MSRs, FPU and
/// the LAPIC's LINT pins.
enum CPUSetup {
    // MSR numbers (Intel SDM vol. 4).
    static let tsc: UInt32 = 0x10
    static let sysenterCS: UInt32 = 0x174, sysenterESP: UInt32 = 0x175, sysenterEIP: UInt32 = 0x176
    static let miscEnable: UInt32 = 0x1A0
    static let mtrrDefType: UInt32 = 0x2FF
    static let star: UInt32 = 0xC000_0081, lstar: UInt32 = 0xC000_0082
    static let cstar: UInt32 = 0xC000_0083, fmask: UInt32 = 0xC000_0084
    static let kernelGSBase: UInt32 = 0xC000_0102

    static let miscEnableFastStrings: UInt64 = 1
    /// MTRRs enabled, default type write-back: without it Linux may map RAM uncached.
    static let mtrrEnabledWriteBack: UInt64 = 0x806

    // LAPIC register offsets and LVT delivery modes.
    static let lvtLINT0: Int = 0x350, lvtLINT1: Int = 0x360
    static let deliveryExtINT: UInt32 = 7 << 8, deliveryNMI: UInt32 = 4 << 8

    static func configure(_ vcpu: VCPU, cpuid: CPUIDTable, cpuCount: Int) throws(KVMError) {
        var table = cpuid
        table.configure(apicID: vcpu.id, cpuCount: UInt32(cpuCount))
        try vcpu.setCPUID(table)

        try vcpu.setMSRs([
            (sysenterCS, 0), (sysenterESP, 0), (sysenterEIP, 0),
            (star, 0), (lstar, 0), (cstar, 0), (fmask, 0), (kernelGSBase, 0),
            (tsc, 0), (miscEnable, miscEnableFastStrings), (mtrrDefType, mtrrEnabledWriteBack),
        ])

        var fpu = kvm_fpu()
        fpu.fcw = 0x37F     // x87 default control word: all exceptions masked
        fpu.mxcsr = 0x1F80  // SSE default: all exceptions masked
        try vcpu.setFPU(fpu)

        // Wire LINT0 to the PIC (ExtINT) and LINT1 to NMI, as on a PC.
        var lapic = try vcpu.lapic()
        withUnsafeMutableBytes(of: &lapic.regs) { regs in
            func update(_ offset: Int, _ mode: UInt32) {
                var v = regs.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                v = (v & ~0x700) | mode
                regs.storeBytes(of: v, toByteOffset: offset, as: UInt32.self)
            }
            update(lvtLINT0, deliveryExtINT)
            update(lvtLINT1, deliveryNMI)
        }
        try vcpu.setLAPIC(lapic)
    }
}
