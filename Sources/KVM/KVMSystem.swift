import CKVM
import Glibc
import LinuxSupport

/// The `/dev/kvm` handle: checks the API and capabilities, and creates VMs.
public final class KVMSystem: Sendable {
    /// The `/dev/kvm` descriptor.
    public let fd: Int32
    /// Bytes to mmap from each vCPU fd (the `kvm_run` area plus the PIO data page).
    public let vcpuMmapSize: Int
    /// The largest vCPU count this KVM accepts in one VM.
    public let maxVCPUs: Int

    /// Opens `path` and verifies API version 12 and every capability in `Capability.required`.
    public init(path: String = "/dev/kvm") throws(KVMError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT, ENODEV, ENXIO: throw .deviceMissing(path: path)
            case EACCES, EPERM: throw .permissionDenied(path: path)
            default: throw .system(SystemError("open \(path)", errno: e))
            }
        }
        self.fd = fd
        let version = apus_ioctl_int(fd, APUS_KVM_GET_API_VERSION(), 0)
        guard version == KVM_API_VERSION else {
            close(fd)
            throw .unsupportedAPIVersion(version)
        }
        for cap in Capability.required where apus_ioctl_int(fd, APUS_KVM_CHECK_EXTENSION(), cap.number) <= 0 {
            close(fd)
            throw .missingCapability(cap)
        }
        let size = apus_ioctl_int(fd, APUS_KVM_GET_VCPU_MMAP_SIZE(), 0)
        guard size > 0 else {
            let error = SystemError.current("KVM_GET_VCPU_MMAP_SIZE")
            close(fd)
            throw .system(error)
        }
        vcpuMmapSize = Int(size)
        let max = apus_ioctl_int(fd, APUS_KVM_CHECK_EXTENSION(), Capability.maxVCPUs.number)
        maxVCPUs = max > 0 ? Int(max) : 1
    }

    deinit { close(fd) }

    /// `KVM_CHECK_EXTENSION`: 0 when absent, otherwise a capability-specific positive value.
    public func check(_ cap: Capability) -> Int32 {
        max(0, apus_ioctl_int(fd, APUS_KVM_CHECK_EXTENSION(), cap.number))
    }

    /// `KVM_CREATE_VM`: a new, empty virtual machine.
    public func createVM() throws(KVMError) -> VirtualMachine {
        let vmfd = apus_ioctl_int(fd, APUS_KVM_CREATE_VM(), 0)
        if vmfd < 0 { throw .system(.current("KVM_CREATE_VM")) }
        return VirtualMachine(fd: vmfd, system: self)
    }

    /// `KVM_GET_SUPPORTED_CPUID`: the CPUID leaves KVM can present to a guest.
    public func supportedCPUID() throws(KVMError) -> CPUIDTable {
        var table = apus_cpuid()
        table.header.nent = UInt32(APUS_MAX_CPUID_ENTRIES)
        if apus_ioctl_ptr(fd, APUS_KVM_GET_SUPPORTED_CPUID(), &table) != 0 {
            throw .system(.current("KVM_GET_SUPPORTED_CPUID"))
        }
        return CPUIDTable(raw: table)
    }
}
