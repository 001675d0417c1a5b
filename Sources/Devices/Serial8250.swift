import DeviceBus
import Synchronization

/// The 16550A-compatible UART at COM1 (0x3F8), as Linux's 8250 driver expects it.
///
/// A pure state machine: bytes the guest transmits go to `output`; bytes for the guest come in
/// through `receive`; interrupts leave through `interrupt` (an edge, since ISA IRQs are
/// edge-triggered). Register offsets and bits are named after the 16550 data sheet.
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
    static let iirNone: UInt8 = 0x01
    static let iirTHREmpty: UInt8 = 0x02
    static let iirReceivedData: UInt8 = 0x04
    static let iirFIFOEnabled: UInt8 = 0xC0
    static let lsrDataReady: UInt8 = 0x01
    static let lsrTHREmpty: UInt8 = 0x20
    static let lsrTransmitterEmpty: UInt8 = 0x40
    static let lcrDLAB: UInt8 = 0x80
    static let mcrLoopback: UInt8 = 0x10
    static let mcrOut2: UInt8 = 0x08
    /// Receive FIFO depth of a 16550A; input beyond it waits in the host.
    public static let fifoDepth = 16

    private struct State {
        var ier: UInt8 = 0
        var lcr: UInt8 = 0x03
        var mcr: UInt8 = mcrOut2
        var scr: UInt8 = 0
        var fcr: UInt8 = 0
        var dll: UInt8 = 0x0C      // 9600 baud
        var dlm: UInt8 = 0
        var thrEmptyPending = false
        var input: [UInt8] = []
        var inputHead = 0

        var hasInput: Bool { inputHead < input.count }

        /// The highest-priority pending interrupt, as IIR reports it.
        var pendingInterrupt: UInt8 {
            if ier & ierReceivedData != 0 && hasInput { return iirReceivedData }
            if ier & ierTHREmpty != 0 && thrEmptyPending { return iirTHREmpty }
            return iirNone
        }
    }

    public let name: String
    private let state = Mutex(State())
    private let output: @Sendable (UInt8) -> Void
    private let interrupt: @Sendable () -> Void

    /// - Parameters:
    ///   - output: receives each byte the guest transmits.
    ///   - interrupt: raises the UART's IRQ line (an edge).
    public init(name: String = "serial0", output: @escaping @Sendable (UInt8) -> Void,
                interrupt: @escaping @Sendable () -> Void = {}) {
        self.name = name
        self.output = output
        self.interrupt = interrupt
    }

    /// Queues `bytes` for the guest to read; returns how many fit in the receive FIFO.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> Int {
        let (accepted, raise) = state.withLock { s -> (Int, Bool) in
            if s.inputHead == s.input.count { s.input.removeAll(keepingCapacity: true); s.inputHead = 0 }
            let room = max(0, Self.fifoDepth - (s.input.count - s.inputHead))
            let n = min(room, bytes.count)
            let before = s.pendingInterrupt
            s.input.append(contentsOf: bytes.prefix(n))
            return (n, before == Self.iirNone && s.pendingInterrupt != Self.iirNone)
        }
        if raise { interrupt() }
        return accepted
    }

    /// Free room in the receive FIFO.
    public var receiveRoom: Int {
        state.withLock { Self.fifoDepth - ($0.input.count - $0.inputHead) }
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard data.count >= 1 else { return }
        let value: UInt8 = state.withLock { s in
            let dlab = s.lcr & Self.lcrDLAB != 0
            switch offset {
            case Self.rbrThr:
                if dlab { return s.dll }
                guard s.hasInput else { return 0 }
                let b = s.input[s.inputHead]
                s.inputHead += 1
                return b
            case Self.ier: return dlab ? s.dlm : s.ier
            case Self.iirFcr:
                let iir = s.pendingInterrupt
                // Reading IIR while it reports THR-empty acknowledges that interrupt.
                if iir == Self.iirTHREmpty { s.thrEmptyPending = false }
                return iir | (s.fcr & 0x01 != 0 ? Self.iirFIFOEnabled : 0)
            case Self.lcr: return s.lcr
            case Self.mcr: return s.mcr
            case Self.lsr:
                // The transmitter is always idle: output is handed to the host immediately.
                return Self.lsrTHREmpty | Self.lsrTransmitterEmpty | (s.hasInput ? Self.lsrDataReady : 0)
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
        var transmit = false
        let raise: Bool = state.withLock { s in
            let before = s.pendingInterrupt
            let dlab = s.lcr & Self.lcrDLAB != 0
            switch offset {
            case Self.rbrThr:
                if dlab { s.dll = value; break }
                if s.mcr & Self.mcrLoopback != 0 {
                    if s.input.count - s.inputHead < Self.fifoDepth { s.input.append(value) }
                } else {
                    transmit = true
                }
                // The byte left at once, so THR is empty again.
                s.thrEmptyPending = true
            case Self.ier:
                if dlab { s.dlm = value; break }
                let newlyEnabled = (value & ~s.ier) & Self.ierTHREmpty != 0
                s.ier = value & 0x0F
                // Linux's transmit path waits for this interrupt right after enabling it.
                if newlyEnabled { s.thrEmptyPending = true }
            case Self.iirFcr:
                s.fcr = value
                if value & 0x02 != 0 { s.input.removeAll(); s.inputHead = 0 }
            case Self.lcr: s.lcr = value
            case Self.mcr: s.mcr = value & 0x1F
            case Self.scr: s.scr = value
            default: break
            }
            let after = s.pendingInterrupt
            return after != Self.iirNone && (before == Self.iirNone || offset == Self.rbrThr || offset == Self.ier)
        }
        if transmit { output(value) }
        if raise { interrupt() }
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
