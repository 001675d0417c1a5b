import CKVM
import Glibc
import LinuxSupport

/// A KVM virtual machine: its memory slots, in-kernel interrupt controllers, ioeventfds, irqfds
/// and interrupt routes. Mechanism only — which addresses and pins to use is `Machine`'s call.
public final class VirtualMachine: Sendable {
    /// The VM descriptor.
    public let fd: Int32
    /// The `/dev/kvm` handle this VM came from (kept alive with it).
    public let system: KVMSystem

    init(fd: Int32, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    deinit { close(fd) }

    @inline(__always)
    private func ioctl(_ name: @autoclosure () -> String, _ request: UInt, _ arg: UnsafeMutableRawPointer) throws(KVMError) {
        if apus_ioctl_ptr(fd, request, arg) != 0 { throw .system(.current(name())) }
    }

    /// `KVM_SET_USER_MEMORY_REGION`: maps `size` bytes of host memory at `host` into the guest
    /// at `guestAddress`, as slot `slot`.
    ///
    /// The caller keeps `host` mapped for the VM's lifetime: the kernel keeps using it.
    public func setMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer) throws(KVMError) {
        var region = kvm_userspace_memory_region(
            slot: slot, flags: 0, guest_phys_addr: guestAddress, memory_size: size,
            userspace_addr: UInt64(UInt(bitPattern: host)))
        try ioctl("KVM_SET_USER_MEMORY_REGION slot \(slot)", APUS_KVM_SET_USER_MEMORY_REGION(), &region)
    }

    /// `KVM_SET_TSS_ADDR`: three pages of guest-physical space (in no RAM, no MMIO) that Intel
    /// VMX needs for real-mode emulation.
    public func setTSSAddress(_ address: UInt64) throws(KVMError) {
        if apus_ioctl_int(fd, APUS_KVM_SET_TSS_ADDR(), UInt(address)) != 0 { throw .system(.current("KVM_SET_TSS_ADDR")) }
    }

    /// `KVM_SET_IDENTITY_MAP_ADDR`: one page for the VMX identity map (just below the TSS).
    public func setIdentityMapAddress(_ address: UInt64) throws(KVMError) {
        var a = address
        try ioctl("KVM_SET_IDENTITY_MAP_ADDR", APUS_KVM_SET_IDENTITY_MAP_ADDR(), &a)
    }

    /// `KVM_CREATE_IRQCHIP`: PIC, IOAPIC and per-vCPU LAPICs emulated in the kernel. Must come
    /// before the first vCPU is created.
    public func createIRQChip() throws(KVMError) {
        if apus_ioctl_int(fd, APUS_KVM_CREATE_IRQCHIP(), 0) != 0 { throw .system(.current("KVM_CREATE_IRQCHIP")) }
    }

    /// `KVM_CREATE_PIT2`: the 8254 timer in the kernel.
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        try ioctl("KVM_CREATE_PIT2", APUS_KVM_CREATE_PIT2(), &config)
    }

    /// `KVM_IRQ_LINE`: sets an interrupt line (a GSI) high or low.
    public func setIRQLine(gsi: UInt32, high: Bool) throws(KVMError) {
        var level = kvm_irq_level()
        level.irq = gsi
        level.level = high ? 1 : 0
        try ioctl("KVM_IRQ_LINE gsi \(gsi)", APUS_KVM_IRQ_LINE(), &level)
    }

    /// `KVM_IOEVENTFD`: has KVM signal `event` itself when the guest writes `address`, instead of
    /// exiting to userspace. See `IOEventAddress` and `IOEventMatch` for the choices.
    public func registerIOEvent(_ event: EventFD, at address: IOEventAddress, match: IOEventMatch = .any) throws(KVMError) {
        var request = address.request(fd: event.fd, match: match)
        try ioctl("KVM_IOEVENTFD assign \(address)", APUS_KVM_IOEVENTFD(), &request)
    }

    /// Removes a registration made by `registerIOEvent` (same address and match).
    public func unregisterIOEvent(_ event: EventFD, at address: IOEventAddress, match: IOEventMatch = .any) throws(KVMError) {
        var request = address.request(fd: event.fd, match: match)
        request.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_deassign)
        try ioctl("KVM_IOEVENTFD deassign \(address)", APUS_KVM_IOEVENTFD(), &request)
    }

    /// `KVM_IRQFD`: signalling `event` raises interrupt `gsi` (an IOAPIC pin or an MSI route).
    /// With `resample`, KVM signals `resample` when the guest EOIs a level-triggered interrupt,
    /// so the device can re-assert the line if it still has work.
    public func registerIRQFD(_ event: EventFD, gsi: UInt32, resample: EventFD? = nil) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(event.fd)
        request.gsi = gsi
        if let resample {
            request.flags = UInt32(KVM_IRQFD_FLAG_RESAMPLE)
            request.resamplefd = UInt32(resample.fd)
        }
        try ioctl("KVM_IRQFD assign gsi \(gsi)", APUS_KVM_IRQFD(), &request)
    }

    /// Removes an irqfd registration.
    public func unregisterIRQFD(_ event: EventFD, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(event.fd)
        request.gsi = gsi
        request.flags = UInt32(KVM_IRQFD_FLAG_DEASSIGN)
        try ioctl("KVM_IRQFD deassign gsi \(gsi)", APUS_KVM_IRQFD(), &request)
    }

    /// `KVM_SET_GSI_ROUTING`: replaces the whole GSI routing table. The table must repeat the
    /// IOAPIC/PIC routes the VM should keep — see `GSIRoutingTable.withDefaultIRQChipRoutes`.
    public func setGSIRouting(_ table: GSIRoutingTable) throws(KVMError) {
        guard var raw = table.raw() else {
            throw .system(SystemError("KVM_SET_GSI_ROUTING with \(table.routes.count) routes (at most \(GSIRoutingTable.capacity))", errno: E2BIG))
        }
        try ioctl("KVM_SET_GSI_ROUTING", APUS_KVM_SET_GSI_ROUTING(), &raw)
    }

    /// `KVM_SIGNAL_MSI`: injects one message-signalled interrupt directly.
    public func signalMSI(_ message: MSIMessage) throws(KVMError) {
        var msi = kvm_msi()
        msi.address_lo = UInt32(truncatingIfNeeded: message.address)
        msi.address_hi = UInt32(truncatingIfNeeded: message.address >> 32)
        msi.data = message.data
        // Returns >0 when delivered, 0 when the guest blocked it; only <0 is an error.
        if apus_ioctl_ptr(fd, APUS_KVM_SIGNAL_MSI(), &msi) < 0 { throw .system(.current("KVM_SIGNAL_MSI")) }
    }

    /// `KVM_CREATE_VCPU` plus the `kvm_run` mapping.
    public func createVCPU(id: UInt32) throws(KVMError) -> VCPU {
        let vcpufd = apus_ioctl_int(fd, APUS_KVM_CREATE_VCPU(), UInt(id))
        if vcpufd < 0 { throw .system(.current("KVM_CREATE_VCPU \(id)")) }
        do {
            let mapping = try MemoryMapping.shared(fd: vcpufd, length: system.vcpuMmapSize, operation: "mmap kvm_run of vCPU \(id)")
            return VCPU(id: id, fd: vcpufd, runArea: mapping)
        } catch {
            close(vcpufd)
            throw .system(error)
        }
    }
}
