import ByteOrder
import DeviceBus

/// The registers a hardware-reduced ACPI machine powers off and resets through, described to
/// the guest in the FADT (`SLEEP_CONTROL_REG`, `SLEEP_STATUS_REG`, `RESET_REG`).
///
/// - offset 0, sleep control: the guest writes `SLP_TYP << 2 | SLP_EN`; with SLP_TYP = 5 (the
///   DSDT's `\_S5`) that is a power-off.
/// - offset 1, sleep status: reads 0 (never "woken").
/// - offset 2, reset: writing `resetValue` reboots.
public final class AcpiPowerDevice: BusDevice {
    public static let sleepControl: UInt64 = 0
    public static let sleepStatus: UInt64 = 1
    public static let reset: UInt64 = 2
    public static let length: UInt64 = 4
    public static let resetValue: UInt8 = 1
    static let sleepEnable: UInt8 = 0x20
    static let s5: UInt8 = 5

    public let name = "acpi-power"
    private let onPowerOff: @Sendable () -> Void
    private let onReset: @Sendable () -> Void

    public init(onPowerOff: @escaping @Sendable () -> Void, onReset: @escaping @Sendable () -> Void) {
        self.onPowerOff = onPowerOff
        self.onReset = onReset
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        data.storeLittleEndian(0)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let value = data.first else { return }
        switch offset {
        case Self.sleepControl where value & Self.sleepEnable != 0 && (value >> 2) & 0x7 == Self.s5:
            onPowerOff()
        case Self.reset where value == Self.resetValue:
            onReset()
        default:
            break
        }
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        switch offset {
        case Self.sleepControl: "SLEEP_CONTROL"
        case Self.sleepStatus: "SLEEP_STATUS"
        case Self.reset: "RESET"
        default: nil
        }
    }
}

/// Just enough of the i8042 keyboard controller for a reset: writing 0xFE to the command port
/// (0x64) pulses the CPU reset line, which is how Linux's `reboot=k` restarts. Reads return
/// 0xFF, which makes Linux's controller probe give up at once instead of timing out.
public final class I8042ResetPort: BusDevice {
    static let pulseResetLine: UInt8 = 0xFE
    public let name = "i8042"
    private let onReset: @Sendable () -> Void

    public init(onReset: @escaping @Sendable () -> Void) { self.onReset = onReset }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for i in 0..<data.count { data[i] = 0xFF }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        if data.first == Self.pulseResetLine { onReset() }
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? { isWrite ? "COMMAND" : "STATUS" }
}
