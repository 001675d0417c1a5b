import DeviceBus
import Locking

/// The 16550A-compatible UART at COM1 (0x3F8), as Linux's 8250 driver expects it.
///
/// A state machine behind one lock: bytes the guest transmits go to `output`; bytes for the
/// guest come in through `receive` (from any thread); the interrupt output is a modelled *line*.
///
/// The line is a level, recomputed after every change of state: high while IIR reports an
/// interrupt and MCR OUT2 is set (on PC-compatible boards OUT2 gates the UART's INTR pin onto
/// the ISA bus; in loopback mode the pin is disconnected). `setLine` is called exactly when the
/// level changes, under the lock, so the hypervisor's view of the line can never disagree with
/// the model's: an ISA IRQ is edge-triggered, and a rise the guest did not see would never come
/// again while the condition stays pending. This is QEMU's `serial_update_irq`, in the same
/// spirit. Register offsets and bits are named after the 16550 data sheet.
public final class Serial8250: BusDevice {
    // Register offsets (DLAB = 0 unless noted).
    static let rbrThr: UInt64 = 0  // receive buffer (read) / transmit holding (write); DLL with DLAB
    static let ier: UInt64 = 1     // interrupt enable; DLM with DLAB
    static let iirFcr: UInt64 = 2  // interrupt identification (read) / FIFO control (write)
    static let lcr: UInt64 = 3     // line control; bit 7 = DLAB
    static let mcr: UInt64 = 4     // modem control
    static let lsr: UInt64 = 5     // line status
    static let msr: UInt64 = 6     // modem status
    static let scr: UInt64 = 7     // scratch

    static let ierReceivedData: UInt8 = 0x01
    static let ierTHREmpty: UInt8 = 0x02
    static let ierLineStatus: UInt8 = 0x04
    static let iirNone: UInt8 = 0x01
    static let iirTHREmpty: UInt8 = 0x02
    static let iirReceivedData: UInt8 = 0x04
    static let iirLineStatus: UInt8 = 0x06
    static let iirFIFOEnabled: UInt8 = 0xC0
    static let fcrEnable: UInt8 = 0x01
    static let fcrClearReceive: UInt8 = 0x02
    static let lsrDataReady: UInt8 = 0x01
    static let lsrOverrun: UInt8 = 0x02
    static let lsrTHREmpty: UInt8 = 0x20
    static let lsrTransmitterEmpty: UInt8 = 0x40
    static let lcrDLAB: UInt8 = 0x80
    static let mcrLoopback: UInt8 = 0x10
    static let mcrOut2: UInt8 = 0x08
    /// Receive FIFO depth of a 16550A; input beyond it waits in the host.
    public static let fifoDepth = 16

    /// The receive FIFO: a fixed ring, so no input (host or loopback) can grow host memory.
    struct ReceiveFIFO {
        private var bytes: (UInt64, UInt64) = (0, 0)  // 16 bytes of storage, no heap
        private var head = 0
        private(set) var count = 0

        var isEmpty: Bool { count == 0 }
        var room: Int { Serial8250.fifoDepth - count }

        /// Appends `byte`; false (nothing stored) when the FIFO is full.
        mutating func push(_ byte: UInt8) -> Bool {
            guard count < Serial8250.fifoDepth else { return false }
            let slot = (head + count) % Serial8250.fifoDepth
            withUnsafeMutableBytes(of: &bytes) { $0[slot] = byte }
            count += 1
            return true
        }

        mutating func pop() -> UInt8? {
            guard count > 0 else { return nil }
            let byte = withUnsafeBytes(of: &bytes) { $0[head] }
            head = (head + 1) % Serial8250.fifoDepth
            count -= 1
            return byte
        }

        mutating func clear() { head = 0; count = 0 }
    }

    struct State {
        var ier: UInt8 = 0
        var lcr: UInt8 = 0x03
        /// OUT2 starts set, unlike a real 16550, so that guests which never touch MCR (the
        /// bare-metal test guests) still get interrupts; Linux sets it itself when a port opens.
        var mcr: UInt8 = mcrOut2
        var scr: UInt8 = 0
        var fcr: UInt8 = 0
        var dll: UInt8 = 0x0C      // 9600 baud
        var dlm: UInt8 = 0
        /// THR-empty interrupt pending: set when THR empties (at once: output is instant) or
        /// when the interrupt is enabled, cleared by reading IIR while it reports it, or by a
        /// THR write.
        var thrEmptyPending = false
        /// LSR overrun: a loopback byte found the FIFO full. Cleared by reading LSR.
        var overrun = false
        var fifo = ReceiveFIFO()
        /// The level last handed to `setLine`.
        var lineHigh = false

        /// The highest-priority pending interrupt, as IIR reports it (data sheet table 4).
        var pendingInterrupt: UInt8 {
            if ier & ierLineStatus != 0 && overrun { return iirLineStatus }
            if ier & ierReceivedData != 0 && !fifo.isEmpty { return iirReceivedData }
            if ier & ierTHREmpty != 0 && thrEmptyPending { return iirTHREmpty }
            return iirNone
        }

        /// The UART's INTR output as the interrupt controller sees it.
        var lineLevel: Bool {
            pendingInterrupt != iirNone && mcr & mcrOut2 != 0 && mcr & mcrLoopback == 0
        }
    }

    public let name: String
    private let state = Locked(State())
    private let output: @Sendable (UInt8) -> Void
    private let setLine: @Sendable (Bool) -> Void

    /// - Parameters:
    ///   - output: receives each byte the guest transmits.
    ///   - setLine: drives the UART's interrupt line (true = high). Called under the UART's lock,
    ///     only when the level changes, so it must not call back into the UART.
    public init(name: String = "serial0", output: @escaping @Sendable (UInt8) -> Void,
                setLine: @escaping @Sendable (Bool) -> Void = { _ in }) {
        self.name = name
        self.output = output
        self.setLine = setLine
    }

    /// Runs `body` on the state under the lock, then brings the interrupt line up to date.
    private func update<R>(_ body: (inout State) -> R) -> R {
        state.withLock { s in
            let result = body(&s)
            syncLine(&s)
            return result
        }
    }

    /// Hands the line's level to `setLine` if it changed. Called with the lock held.
    private func syncLine(_ s: inout State) {
        let level = s.lineLevel
        if level != s.lineHigh {
            s.lineHigh = level
            setLine(level)
        }
    }

    /// Queues `bytes` for the guest to read; returns how many fit in the receive FIFO.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> Int {
        update { s in
            var accepted = 0
            for b in bytes {
                guard s.fifo.push(b) else { break }
                accepted += 1
            }
            return accepted
        }
    }

    /// Free room in the receive FIFO.
    public var receiveRoom: Int { state.withLock { $0.fifo.room } }

    /// The interrupt line's current level (for tests and tracing).
    public var lineIsHigh: Bool { state.withLock { $0.lineHigh } }

    /// What IIR would report, without the side effect of reading it (for tests and tracing).
    public var pendingInterrupt: UInt8 { state.withLock { $0.pendingInterrupt } }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard data.count >= 1 else { return }
        let value: UInt8 = update { s in
            let dlab = s.lcr & Self.lcrDLAB != 0
            switch offset {
            case Self.rbrThr:
                if dlab { return s.dll }
                return s.fifo.pop() ?? 0
            case Self.ier: return dlab ? s.dlm : s.ier
            case Self.iirFcr:
                let iir = s.pendingInterrupt
                // Reading IIR while it reports THR-empty acknowledges that interrupt.
                if iir == Self.iirTHREmpty { s.thrEmptyPending = false }
                return iir | (s.fcr & Self.fcrEnable != 0 ? Self.iirFIFOEnabled : 0)
            case Self.lcr: return s.lcr
            case Self.mcr: return s.mcr
            case Self.lsr:
                // The transmitter is always idle: output is handed to the host immediately.
                let lsr = Self.lsrTHREmpty | Self.lsrTransmitterEmpty
                    | (s.fifo.isEmpty ? 0 : Self.lsrDataReady) | (s.overrun ? Self.lsrOverrun : 0)
                s.overrun = false
                return lsr
            case Self.msr:
                if s.mcr & Self.mcrLoopback != 0 {
                    // Loopback wires DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD (upper nibble).
                    let m = s.mcr
                    return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
                }
                return 0xB0  // DCD, DSR, CTS: a cable with someone on the other end
            case Self.scr: return s.scr
            default: return 0
            }
        }
        data[0] = value
        for i in 1..<data.count { data[i] = 0 }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard data.count >= 1 else { return }
        let value = data[0]
        let transmit: Bool = update { s in
            let dlab = s.lcr & Self.lcrDLAB != 0
            switch offset {
            case Self.rbrThr:
                if dlab { s.dll = value; return false }
                // Writing THR clears a pending THR-empty interrupt (the line drops); the byte
                // leaves at once, so THR is empty again and the interrupt is pending anew: a
                // fresh rise, as on a real 16550 a moment later.
                s.thrEmptyPending = false
                syncLine(&s)
                s.thrEmptyPending = true
                if s.mcr & Self.mcrLoopback != 0 {
                    if !s.fifo.push(value) { s.overrun = true }
                    return false
                }
                return true
            case Self.ier:
                if dlab { s.dlm = value; return false }
                let newlyEnabled = (value & ~s.ier) & Self.ierTHREmpty != 0
                s.ier = value & 0x0F
                // Enabling the THR-empty interrupt while THR is empty raises it (16550 behaviour
                // Linux's transmit path relies on).
                if newlyEnabled { s.thrEmptyPending = true }
            case Self.iirFcr:
                s.fcr = value
                if value & Self.fcrClearReceive != 0 { s.fifo.clear() }
            case Self.lcr: s.lcr = value
            case Self.mcr: s.mcr = value & 0x1F
            case Self.scr: s.scr = value
            default: break
            }
            return false
        }
        if transmit { output(value) }
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        switch offset {
        case Self.rbrThr: isWrite ? "THR" : "RBR"
        case Self.ier: "IER"
        case Self.iirFcr: isWrite ? "FCR" : "IIR"
        case Self.lcr: "LCR"
        case Self.mcr: "MCR"
        case Self.lsr: "LSR"
        case Self.msr: "MSR"
        case Self.scr: "SCR"
        default: nil
        }
    }
}
