import CKVM

/// Where an ioeventfd listens: a port, or an MMIO address with an access length.
public enum IOEventAddress: Sendable, Equatable, CustomStringConvertible {
    /// A port-I/O write of `length` bytes (1, 2 or 4) to `port`.
    case pio(port: UInt16, length: UInt32)
    /// An MMIO write of `length` bytes (1, 2, 4 or 8) to `address`.
    case mmio(address: UInt64, length: UInt32)
    /// "Fast MMIO": a write of any length to `address`, registered with length 0. KVM can then
    /// signal the eventfd straight from the EPT-misconfiguration exit, without decoding the
    /// guest instruction (so no data, and so no datamatch, is available).
    case fastMMIO(address: UInt64)

    public var description: String {
        switch self {
        case let .pio(port, length): "pio port 0x\(String(port, radix: 16)) len \(length)"
        case let .mmio(address, length): "mmio 0x\(String(address, radix: 16)) len \(length)"
        case let .fastMMIO(address): "fast-mmio 0x\(String(address, radix: 16))"
        }
    }

    func request(fd: Int32, match: IOEventMatch) -> kvm_ioeventfd {
        var r = kvm_ioeventfd()
        r.fd = fd
        switch self {
        case let .pio(port, length):
            r.addr = UInt64(port)
            r.len = length
            r.flags = UInt32(1 << kvm_ioeventfd_flag_nr_pio)
        case let .mmio(address, length):
            r.addr = address
            r.len = length
        case let .fastMMIO(address):
            r.addr = address
            r.len = 0
        }
        if case let .value(v) = match {
            r.datamatch = v
            r.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_datamatch)
        }
        return r
    }
}

/// Which written values trigger an ioeventfd. Explicit rather than inferred from a type's width:
/// the width is the `IOEventAddress` length.
public enum IOEventMatch: Sendable, Equatable {
    /// Any value written.
    case any
    /// Only this value (virtio-mmio's shared QueueNotify register carries the queue index).
    case value(UInt64)
}

/// A message-signalled interrupt: the address/data pair a PCI device would write.
public struct MSIMessage: Sendable, Equatable {
    public var address: UInt64
    public var data: UInt32
    public init(address: UInt64, data: UInt32) {
        self.address = address
        self.data = data
    }

    /// A fixed, edge-triggered interrupt with `vector` to the LAPIC with ID `destinationAPIC`
    /// (physical destination mode), the x86 MSI format from the Intel SDM §11.11.
    public static func fixed(vector: UInt8, destinationAPIC: UInt8) -> MSIMessage {
        MSIMessage(address: 0xFEE0_0000 | (UInt64(destinationAPIC) << 12), data: UInt32(vector))
    }
}
