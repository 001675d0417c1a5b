/// Device status bits (virtio 1.2 §2.1).
public enum DeviceStatus {
    public static let acknowledge: UInt8 = 1
    public static let driver: UInt8 = 2
    public static let driverOK: UInt8 = 4
    public static let featuresOK: UInt8 = 8
    public static let deviceNeedsReset: UInt8 = 0x40
    public static let failed: UInt8 = 0x80
}

/// Transport-independent feature bits (virtio 1.2 §6).
public enum VirtioFeature {
    public static let ringIndirectDesc: UInt64 = 1 << 28
    public static let ringEventIdx: UInt64 = 1 << 29
    public static let version1: UInt64 = 1 << 32
}

/// Device IDs (virtio 1.2 §5).
public enum VirtioDeviceID {
    public static let net: UInt32 = 1
    public static let block: UInt32 = 2
    public static let console: UInt32 = 3
    public static let entropy: UInt32 = 4
    public static let balloon: UInt32 = 5
}
