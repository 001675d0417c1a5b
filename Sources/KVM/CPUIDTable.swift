import CKVM

/// A list of CPUID leaves as KVM takes them (`struct kvm_cpuid2`).
public struct CPUIDTable: @unchecked Sendable {
    /// The fixed-capacity C layout handed to `KVM_SET_CPUID2`.
    public var raw: apus_cpuid

    public init(raw: apus_cpuid) { self.raw = raw }

    /// Number of leaves in use.
    public var count: Int { Int(raw.header.nent) }

    /// Calls `body` with each entry, mutably.
    public mutating func updateEach(_ body: (inout kvm_cpuid_entry2) -> Void) {
        let n = count
        withUnsafeMutableBytes(of: &raw.entries) { bytes in
            let entries = bytes.bindMemory(to: kvm_cpuid_entry2.self)
            for i in 0..<n { body(&entries[i]) }
        }
    }

    /// The entry for `function`/`index`, if present.
    public func entry(function: UInt32, index: UInt32 = 0) -> kvm_cpuid_entry2? {
        let n = count
        return withUnsafeBytes(of: raw.entries) { bytes in
            let entries = bytes.bindMemory(to: kvm_cpuid_entry2.self)
            for i in 0..<n where entries[i].function == function && entries[i].index == index {
                return entries[i]
            }
            return nil
        }
    }

    /// Makes the table describe vCPU `apicID` of `cpuCount`: the initial APIC ID in leaf 1 and
    /// the x2APIC ID in leaves 0xB/0x1F, plus the hypervisor-present bit. KVM gives each LAPIC
    /// the vCPU id as its ID, so the guest's CPUID must agree with it.
    public mutating func configure(apicID: UInt32, cpuCount: UInt32) {
        updateEach { e in
            switch e.function {
            case 1:
                e.ebx = (e.ebx & 0x0000_FFFF) | (apicID << 24) | ((cpuCount & 0xFF) << 16)
                e.edx |= 1 << 28            // HTT: the logical-processor count above is valid
                e.ecx |= 1 << 31            // running under a hypervisor
            case 0xB, 0x1F:
                e.edx = apicID
            default:
                break
            }
        }
    }
}
