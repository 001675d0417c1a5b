/// The BIOS memory map handed to Linux in boot_params.
public struct E820Entry: Sendable, Equatable {
    public enum Kind: UInt32, Sendable {
        case ram = 1, reserved = 2, acpiData = 3
    }
    public var address: UInt64
    public var size: UInt64
    public var kind: Kind

    public init(address: UInt64, size: UInt64, kind: Kind) {
        self.address = address
        self.size = size
        self.kind = kind
    }
}
