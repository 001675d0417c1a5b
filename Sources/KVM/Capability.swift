import CKVM

/// The KVM capabilities Apus checks with `KVM_CHECK_EXTENSION`.
public enum Capability: CaseIterable, Sendable {
    case irqchip, userMemory, setTSSAddress, setIdentityMapAddress, pit2, ioeventfd,
         ioeventfdAnyLength, irqfd, irqRouting, signalMSI, immediateExit, extendedCPUID, maxVCPUs

    /// The number `KVM_CHECK_EXTENSION` takes.
    public var number: UInt {
        switch self {
        case .irqchip: UInt(KVM_CAP_IRQCHIP)
        case .userMemory: UInt(KVM_CAP_USER_MEMORY)
        case .setTSSAddress: UInt(KVM_CAP_SET_TSS_ADDR)
        case .setIdentityMapAddress: UInt(KVM_CAP_SET_IDENTITY_MAP_ADDR)
        case .pit2: UInt(KVM_CAP_PIT2)
        case .ioeventfd: UInt(KVM_CAP_IOEVENTFD)
        case .ioeventfdAnyLength: UInt(KVM_CAP_IOEVENTFD_ANY_LENGTH)
        case .irqfd: UInt(KVM_CAP_IRQFD)
        case .irqRouting: UInt(KVM_CAP_IRQ_ROUTING)
        case .signalMSI: UInt(KVM_CAP_SIGNAL_MSI)
        case .immediateExit: UInt(KVM_CAP_IMMEDIATE_EXIT)
        case .extendedCPUID: UInt(KVM_CAP_EXT_CPUID)
        case .maxVCPUs: UInt(KVM_CAP_MAX_VCPUS)
        }
    }

    /// The kernel's name for it, used in error messages.
    public var name: String {
        switch self {
        case .irqchip: "KVM_CAP_IRQCHIP"
        case .userMemory: "KVM_CAP_USER_MEMORY"
        case .setTSSAddress: "KVM_CAP_SET_TSS_ADDR"
        case .setIdentityMapAddress: "KVM_CAP_SET_IDENTITY_MAP_ADDR"
        case .pit2: "KVM_CAP_PIT2"
        case .ioeventfd: "KVM_CAP_IOEVENTFD"
        case .ioeventfdAnyLength: "KVM_CAP_IOEVENTFD_ANY_LENGTH"
        case .irqfd: "KVM_CAP_IRQFD"
        case .irqRouting: "KVM_CAP_IRQ_ROUTING"
        case .signalMSI: "KVM_CAP_SIGNAL_MSI"
        case .immediateExit: "KVM_CAP_IMMEDIATE_EXIT"
        case .extendedCPUID: "KVM_CAP_EXT_CPUID"
        case .maxVCPUs: "KVM_CAP_MAX_VCPUS"
        }
    }

    /// Everything a VM built by Apus needs; `KVMSystem.open` refuses a KVM without these.
    public static let required: [Capability] = [
        .irqchip, .userMemory, .setTSSAddress, .setIdentityMapAddress, .pit2, .ioeventfd,
        .ioeventfdAnyLength, .irqfd, .irqRouting, .signalMSI, .immediateExit, .extendedCPUID,
    ]
}
