import Devices
import Synchronization
import Testing

/// The UART's interrupt output as a modelled line: an ISA IRQ is an edge, so a rise the
/// interrupt controller never saw is an interrupt lost for good (the ttyS0 input stall).
@Suite struct Serial8250LineTests {
    typealias Sink = Serial8250Tests.Sink
    func makeSerial() -> (Serial8250, Sink) { Serial8250Tests().makeSerial() }

    /// The level the line must have, from registers read without side effects.
    func expectedLevel(_ serial: Serial8250) -> Bool {
        let mcr = serial.readByte(4)
        return serial.pendingInterrupt != 0x01 && mcr & 0x08 != 0 && mcr & 0x10 == 0
    }

    @Test func out2GatesTheLineAndSettingItRaisesAPendingInterrupt() {
        let (serial, sink) = makeSerial()
        serial.writeByte(4, 0x03)                       // MCR: DTR RTS, OUT2 off
        serial.writeByte(1, 0x01)                       // IER: received data
        serial.receive([0x41])
        #expect(sink.rises == 0)                        // pending, but gated
        serial.writeByte(4, 0x0B)                       // OUT2 on: the line rises now
        #expect(sink.rises == 1 && sink.level)
        serial.writeByte(4, 0x03)                       // OUT2 off again: it falls
        #expect(!sink.level)
    }

    @Test func everyTHRWriteWithTHREInterruptsOnIsAFreshEdge() {
        let (serial, sink) = makeSerial()
        serial.writeByte(1, 0x02)                       // IER: THR empty → rise 1
        for b in Array("abc".utf8) { serial.writeByte(0, b) }
        #expect(sink.rises == 4)                        // each byte empties THR anew
        #expect(sink.levels.withLock { $0 } == [true, false, true, false, true, false, true])
    }

    @Test func inputThatArrivesAfterTheGuestDrainedTheFIFORaisesTheLineAgain() {
        let (serial, sink) = makeSerial()
        serial.writeByte(1, 0x03)                       // IER: received data + THR empty
        #expect(sink.rises == 1)                        // THR empty
        serial.receive(Array("xy".utf8))                // line already high: no second edge needed
        #expect(serial.readByte(2) & 0x0F == 0x04)      // IIR: received data first
        _ = serial.readByte(0); _ = serial.readByte(0)
        #expect(serial.readByte(2) & 0x0F == 0x02)      // then THR empty (acknowledged by this read)
        #expect(!sink.level)
        serial.receive([0x7A])
        #expect(sink.rises == 2 && sink.level)
    }

    @Test func aLoopbackFloodStaysInTheFIFOAndReportsOverrun() {
        let (serial, sink) = makeSerial()
        serial.writeByte(4, 0x10 | 0x08)                // loopback (the line is disconnected)
        serial.writeByte(1, 0x07)
        for i in 0..<100_000 { serial.writeByte(0, UInt8(truncatingIfNeeded: i)) }
        #expect(serial.receiveRoom == 0)
        #expect(serial.readByte(5) & 0x03 == 0x03)      // LSR: data ready + overrun
        #expect(serial.readByte(5) & 0x02 == 0)         // reading LSR cleared overrun
        #expect(sink.rises == 0)                        // loopback never interrupts the board
        #expect(sink.bytes.withLock { $0 }.isEmpty)
    }

    /// Random guest register accesses interleaved with host input: after every step the line
    /// the board sees equals the modelled one, and it is only ever driven to a new level (so a
    /// high line always had its rising edge delivered since it was last low).
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func randomInterleavingsNeverLeaveThePendingLineWithoutAnEdge(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let (serial, sink) = makeSerial()
        for _ in 0..<5_000 {
            switch rng.next() % 12 {
            case 0: serial.writeByte(1, UInt8(truncatingIfNeeded: rng.next()) & 0x07)   // IER
            case 1: _ = serial.readByte(2)                                              // IIR
            case 2: _ = serial.readByte(5)                                              // LSR
            case 3, 4: _ = serial.readByte(0)                                           // RBR
            case 5: serial.writeByte(0, UInt8(truncatingIfNeeded: rng.next()))         // THR
            case 6: serial.writeByte(2, UInt8(truncatingIfNeeded: rng.next()) & 0x07)   // FCR
            case 7:                                                                     // MCR, OUT2 on/off, rarely loopback
                let loop: UInt8 = rng.next() % 8 == 0 ? 0x10 : 0
                serial.writeByte(4, (rng.next() % 2 == 0 ? 0x08 : 0) | 0x03 | loop)
            case 8: _ = serial.readByte(1)                                              // IER read
            default: serial.receive(Array(repeating: 0x61, count: Int(rng.next() % 20)))
            }
            #expect(sink.level == expectedLevel(serial))
        }
        let levels = sink.levels.withLock { $0 }
        #expect(zip(levels, levels.dropFirst()).allSatisfy { $0 != $1 })
        #expect(levels.first != false)
    }

    /// The same with a vCPU thread and the console-input thread racing.
    @Test func aVCPUThreadAndTheInputThreadRacingKeepTheLineConsistent() async {
        let (serial, sink) = makeSerial()
        serial.writeByte(1, 0x03)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var rng = SplitMix(seed: 42)
                for _ in 0..<20_000 {
                    switch rng.next() % 5 {
                    case 0: _ = serial.readByte(2)
                    case 1: serial.writeByte(0, 0x2E)
                    case 2: serial.writeByte(1, UInt8(truncatingIfNeeded: rng.next()) & 0x03)
                    default: _ = serial.readByte(0)
                    }
                }
            }
            group.addTask {
                for _ in 0..<20_000 { serial.receive([0x62, 0x63]) }
            }
        }
        let levels = sink.levels.withLock { $0 }
        #expect(zip(levels, levels.dropFirst()).allSatisfy { $0 != $1 })
        #expect(sink.level == expectedLevel(serial))
    }
}

/// A small deterministic generator, so a failing seed reproduces.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
