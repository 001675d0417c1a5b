import DeviceBus
import Devices
import Locking
import Testing

/// Drives a device the way the bus would, one byte-sized register access at a time.
extension BusDevice {
    func readByte(_ offset: UInt64) -> UInt8 {
        var v: UInt8 = 0
        withUnsafeMutableBytes(of: &v) { read(offset: offset, data: $0) }
        return v
    }
    func writeByte(_ offset: UInt64, _ value: UInt8) {
        withUnsafeBytes(of: value) { write(offset: offset, data: $0) }
    }
}

@Suite struct Serial8250Tests {
    /// Records the UART's interrupt line: every level it was driven to, in order.
    final class Sink: Sendable {
        let bytes = Locked<[UInt8]>([])
        let levels = Locked<[Bool]>([])
        /// Rising edges delivered so far.
        var rises: Int { levels.withLock { $0.filter { $0 }.count } }
        var level: Bool { levels.withLock { $0.last ?? false } }
    }

    func makeSerial() -> (Serial8250, Sink) {
        let sink = Sink()
        let serial = Serial8250(output: { b in sink.bytes.withLock { $0.append(b) } },
                                setLine: { high in sink.levels.withLock { $0.append(high) } })
        return (serial, sink)
    }

    @Test func transmitsAndReportsAnIdleTransmitter() {
        let (serial, sink) = makeSerial()
        for b in Array("hi".utf8) { serial.writeByte(0, b) }
        #expect(sink.bytes.withLock { $0 } == Array("hi".utf8))
        #expect(serial.readByte(5) & 0x60 == 0x60)      // LSR: THRE | TEMT
        #expect(serial.readByte(2) & 0x0F == 0x01)      // IIR: nothing pending (IER = 0)
    }

    @Test func divisorLatchHidesDataRegisters() {
        let (serial, sink) = makeSerial()
        serial.writeByte(3, 0x80)                       // DLAB on
        serial.writeByte(0, 0x01)                       // DLL, not THR
        serial.writeByte(1, 0x00)                       // DLM, not IER
        #expect(serial.readByte(0) == 0x01)
        serial.writeByte(3, 0x03)                       // DLAB off, 8N1
        #expect(sink.bytes.withLock { $0 }.isEmpty)
        #expect(serial.readByte(3) == 0x03)
    }

    @Test func enablingTHREInterruptRaisesItAtOnce() {
        let (serial, sink) = makeSerial()
        serial.writeByte(1, 0x02)                       // IER: THR empty
        #expect(sink.rises == 1 && sink.level)
        #expect(serial.readByte(2) & 0x0F == 0x02)      // IIR: THR empty
        #expect(!sink.level)                            // reading IIR acknowledged it: line low
        #expect(serial.readByte(2) & 0x0F == 0x01)
    }

    @Test func receivedDataIsReadableAndInterrupts() {
        let (serial, sink) = makeSerial()
        serial.writeByte(1, 0x01)                       // IER: received data
        #expect(serial.receive(Array("ab".utf8)) == 2)
        #expect(sink.rises == 1 && sink.level)
        #expect(serial.readByte(5) & 0x01 == 0x01)      // LSR: data ready
        #expect(serial.readByte(2) & 0x0F == 0x04)      // IIR: received data
        #expect(serial.readByte(0) == UInt8(ascii: "a"))
        #expect(serial.readByte(0) == UInt8(ascii: "b"))
        #expect(serial.readByte(5) & 0x01 == 0)
        #expect(!sink.level)                            // FIFO drained: the line falls
    }

    @Test func receiveFIFOIsBounded() {
        let (serial, _) = makeSerial()
        #expect(serial.receive([UInt8](repeating: 1, count: 100)) == Serial8250.fifoDepth)
        #expect(serial.receiveRoom == 0)
    }

    @Test func loopbackEchoesAndMirrorsModemLines() {
        let (serial, sink) = makeSerial()
        serial.writeByte(4, 0x10 | 0x0F)                // MCR: loopback + DTR RTS OUT1 OUT2
        serial.writeByte(0, 0x5A)
        #expect(sink.bytes.withLock { $0 }.isEmpty)     // loopback never reaches the host
        #expect(serial.readByte(0) == 0x5A)
        #expect(serial.readByte(6) & 0xF0 == 0xF0)      // MSR: DCD RI DSR CTS
    }

    @Test func scratchRegisterHoldsAValue() {
        let (serial, _) = makeSerial()
        serial.writeByte(7, 0xA5)
        #expect(serial.readByte(7) == 0xA5)
    }
}

@Suite struct ProbeDeviceTests {
    @Test func echoAnswersValuePlusOneTruncatedToTheAccessSize() {
        let probe = ProbeDevice(name: "p")
        withUnsafeBytes(of: UInt32(0xFFFF_FFFF)) { probe.write(offset: 0, data: $0) }
        var b: UInt8 = 7
        withUnsafeMutableBytes(of: &b) { probe.read(offset: 0, data: $0) }
        #expect(b == 0)                                 // 0xFFFFFFFF + 1, low byte
        var q: UInt64 = 0
        withUnsafeMutableBytes(of: &q) { probe.read(offset: 0, data: $0) }
        #expect(q == 0x1_0000_0000)
        #expect(probe.reads == 2 && probe.writes == 1)
    }

    @Test func reportsAreKeptInOrderAndBounded() {
        let probe = ProbeDevice(name: "p")
        for i in 0..<(ProbeDevice.reportCapacity + 10) {
            withUnsafeBytes(of: UInt32(i)) { probe.write(offset: ProbeDevice.reportRegister, data: $0) }
        }
        #expect(probe.reports.count == ProbeDevice.reportCapacity)
        #expect(probe.reports.prefix(3) == [0, 1, 2])
    }
}
