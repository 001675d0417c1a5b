/// A PCI function as the root complex sees it: a configuration space, and the BARs it decodes.
///
/// Functions are called from vCPU threads (config cycles, BAR accesses) and must serialize
/// their own state. Offsets are always relative: `offset` into config space, or into a BAR.
public protocol PCIFunction: AnyObject, Sendable {
    /// A short name for traces, e.g. `"virtio-blk0"`.
    var name: String { get }
    /// A configuration read of 1, 2 or 4 bytes at `offset` (0 ..< 4096).
    func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer)
    /// A configuration write of 1, 2 or 4 bytes at `offset`.
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer)
    /// The BARs the function decodes now (changes with BAR and command-register writes).
    var decodedBARs: [PCIBarMapping] { get }
    /// An access inside BAR `bar` at `offset`.
    func readBAR(_ bar: Int, offset: UInt64, into data: UnsafeMutableRawBufferPointer)
    func writeBAR(_ bar: Int, offset: UInt64, data: UnsafeRawBufferPointer)
    /// What a config register or a BAR offset is called, for `--trace exits`.
    func configRegisterName(offset: Int) -> String?
    func barRegisterName(_ bar: Int, offset: UInt64) -> String?
}

extension PCIFunction {
    public var decodedBARs: [PCIBarMapping] { [] }
    public func readBAR(_ bar: Int, offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        for i in 0..<data.count { data[i] = 0xFF }
    }
    public func writeBAR(_ bar: Int, offset: UInt64, data: UnsafeRawBufferPointer) {}
    public func configRegisterName(offset: Int) -> String? { PCIConfig.registerName(offset) }
    public func barRegisterName(_ bar: Int, offset: UInt64) -> String? { nil }
}

/// The host bridge at 00:00.0: identity only. Linux's mechanism-#1 sanity check looks for a
/// host-bridge class on bus 0, and lspci shows the bridge like on any PC.
public final class PCIHostBridge: PCIFunction {
    public let name = "pci-host-bridge"
    private let space: PCIConfigSpace

    public init() {
        // Red Hat's vendor ID with the device ID QEMU's generic PCIe host uses: no driver binds
        // a host bridge on x86, so the ID only has to be plausible.
        space = PCIConfigSpace(identity: .init(vendor: 0x1B36, device: 0x0008, revision: 0, classCode: 0x06_00_00,
                                               subsystemVendor: 0x1AF4, subsystem: 0x1100))
    }

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) { space.read(offset: offset, into: data) }
    public func writeConfig(offset: Int, data: UnsafeRawBufferPointer) {}
}
