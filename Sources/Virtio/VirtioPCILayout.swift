import ByteOrder
import PCI

/// Where a virtio-pci function keeps what (virtio 1.2 §4.1). Apus's choice of layout; drivers
/// find every structure through the capabilities, so only the capabilities must agree with it.
///
/// ```
/// BAR0  I/O, 256 B    the legacy header + device config (transitional devices only)
/// BAR1  memory, 4 KiB MSI-X table at 0, pending-bit array at 0x800
/// BAR2  memory, 16 KiB modern structures: common config 0x0000, ISR 0x1000,
///                      device config 0x2000, notify 0x3000 (4 bytes per queue)
/// BAR4  I/O           notify, 4 bytes per queue (with `--notify pio` instead of BAR2's)
/// ```
public enum VirtioPCILayout {
    public static let legacyBAR = 0, msixBAR = 1, modernBAR = 2, pioNotifyBAR = 4
    public static let legacySize: UInt64 = 0x100
    public static let msixBARSize: UInt64 = 0x1000
    public static let msixTableOffset: UInt64 = 0, msixPBAOffset: UInt64 = 0x800
    public static let modernSize: UInt64 = 0x4000
    public static let commonOffset: UInt64 = 0x0000, commonLength: UInt64 = 0x40
    public static let isrOffset: UInt64 = 0x1000, isrLength: UInt64 = 1
    public static let deviceOffset: UInt64 = 0x2000, deviceLength: UInt64 = 0x1000
    public static let notifyOffset: UInt64 = 0x3000, notifyLength: UInt64 = 0x1000
    /// Each queue's doorbell is `notify_off_multiplier` bytes after the previous one, so every
    /// queue has an address of its own and KVM can match it without looking at the data.
    public static let notifyMultiplier: UInt32 = 4
    /// The most queues a device may have (the notify area and the MSI-X table bound it).
    public static let maxQueues = 64

    /// Vendor-specific capability type values (`cfg_type`).
    public enum CapabilityType: UInt8, Sendable {
        case commonConfig = 1, notify = 2, isr = 3, deviceConfig = 4, pciConfig = 5
    }
    public static let vendorCapabilityID: UInt8 = 0x09
    public static let vendor: UInt16 = 0x1AF4
    public static let noVector: UInt16 = 0xFFFF

    /// The I/O BAR for `--notify pio`: one doorbell per queue, at least 4 bytes.
    static func pioNotifySize(queues: Int) -> UInt64 {
        var size: UInt64 = 4
        while size < UInt64(queues) * UInt64(notifyMultiplier) { size <<= 1 }
        return size
    }

    /// Transitional PCI device IDs (virtio 1.2 §4.1.2.1): only these device types have one.
    public static func transitionalDeviceID(type: UInt32) -> UInt16? {
        switch type {
        case 1: 0x1000   // network
        case 2: 0x1001   // block
        case 5: 0x1002   // memory balloon
        case 3: 0x1003   // console
        case 8: 0x1004   // SCSI host
        case 4: 0x1005   // entropy source
        case 9: 0x1009   // 9P transport
        default: nil
        }
    }

    /// A PCI class for each device type (base class, subclass, interface), for `lspci`.
    static func classCode(type: UInt32) -> UInt32 {
        switch type {
        case 1: 0x02_00_00   // Ethernet controller
        case 2: 0x01_80_00   // mass storage, other
        case 3: 0x07_80_00   // communication controller, other
        case 5: 0x05_00_00   // RAM memory
        default: 0xFF_00_00  // unassigned class
        }
    }

    /// A `virtio_pci_cap` body (after the ID and next bytes): cap_len, cfg_type, bar, id,
    /// padding, offset, length — plus `extra` (the notify multiplier, or pci_cfg_data).
    static func capabilityBody(_ type: CapabilityType, bar: Int, offset: UInt64, length: UInt64, extra: [UInt8] = []) -> [UInt8] {
        let capLength = UInt8(16 + extra.count)
        return [capLength, type.rawValue, UInt8(bar), 0, 0, 0] + le32(UInt32(offset)) + le32(UInt32(length)) + extra
    }

    static func le32(_ v: UInt32) -> [UInt8] { [UInt8](littleEndian: v) }
}
