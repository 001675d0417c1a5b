import GuestMemory

/// A way the driver broke the split-virtqueue rules. The device answers every one of these by
/// refusing the queue or entering DEVICE_NEEDS_RESET — never by crashing or looping.
public enum QueueError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSize(UInt16, max: UInt16)
    case misaligned(area: String, address: UInt64)
    case areaOutsideRAM(area: String, address: UInt64, length: UInt64)
    case availIndexTooFar(availIdx: UInt16, lastSeen: UInt16, size: UInt16)
    case headOutOfRange(UInt16)
    case nextOutOfRange(UInt16)
    case chainTooLong(limit: Int)
    case bufferOutsideRAM(address: UInt64, length: UInt32)
    case invalidIndirectTable(length: UInt32)
    case nestedIndirect
    case indirectWithNext
    case readableAfterWritable

    public var description: String {
        switch self {
        case let .invalidSize(n, max): "queue size \(n) is not a power of two between 1 and \(max)"
        case let .misaligned(area, address): "\(area) at 0x\(String(address, radix: 16)) is misaligned"
        case let .areaOutsideRAM(area, address, length): "\(area) [0x\(String(address, radix: 16)), +\(length)) is outside guest RAM"
        case let .availIndexTooFar(idx, last, size): "available index \(idx) is more than the queue size \(size) ahead of \(last)"
        case let .headOutOfRange(i): "chain head \(i) is outside the descriptor table"
        case let .nextOutOfRange(i): "descriptor next index \(i) is outside its table"
        case let .chainTooLong(limit): "descriptor chain longer than \(limit) (a loop?)"
        case let .bufferOutsideRAM(address, length): "buffer [0x\(String(address, radix: 16)), +\(length)) is outside guest RAM"
        case let .invalidIndirectTable(length): "indirect table length \(length) is not a non-zero multiple of 16 within limits"
        case .nestedIndirect: "indirect descriptor inside an indirect table"
        case .indirectWithNext: "descriptor has both INDIRECT and NEXT"
        case .readableAfterWritable: "device-readable descriptor after a device-writable one"
        }
    }
}
