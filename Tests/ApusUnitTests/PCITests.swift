import ByteOrder
import DeviceBus
import PCI
import Testing

/// Config-space helpers: read and write through a mechanism, any size.
func configRead(_ f: any PCIFunction, _ offset: Int, size: Int = 4) -> UInt32 {
    var v: UInt64 = 0
    withUnsafeMutableBytes(of: &v) { f.readConfig(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
    return UInt32(truncatingIfNeeded: v)
}
func configWrite(_ f: any PCIFunction, _ offset: Int, _ value: UInt32, size: Int = 4) {
    withUnsafeBytes(of: UInt64(value)) { f.writeConfig(offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
}
func busRead(_ d: any BusDevice, _ offset: UInt64, size: Int) -> UInt64 {
    var v: UInt64 = 0
    withUnsafeMutableBytes(of: &v) { d.read(offset: offset, data: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
    return v
}
func busWrite(_ d: any BusDevice, _ offset: UInt64, _ value: UInt64, size: Int) {
    withUnsafeBytes(of: value) { d.write(offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
}

/// A function with one memory and one I/O BAR and a capability, for the root's tests.
final class TestFunction: PCIFunction, @unchecked Sendable {
    let name = "test"
    var space: PCIConfigSpace
    var lastBARWrite: (Int, UInt64)?
    init() {
        space = PCIConfigSpace(identity: .init(vendor: 0x1234, device: 0x5678, revision: 2, classCode: 0xFF_00_00), interruptPin: 1)
        space.defineBAR(0, .init(kind: .memory32, size: 0x1000, initialAddress: 0xE100_0000))
        space.defineBAR(2, .init(kind: .io, size: 0x20, initialAddress: 0xC000))
        space.addCapability(id: 0x09, body: [4, 1, 2, 3])
        space.addCapability(id: 0x11, body: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }
    func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) { space.read(offset: offset, into: data) }
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer) { space.write(offset: offset, data: data) }
    var decodedBARs: [PCIBarMapping] { space.decodedBARs }
    func readBAR(_ bar: Int, offset: UInt64, into data: UnsafeMutableRawBufferPointer) { data.storeLittleEndian(UInt64(bar) << 16 | offset) }
    func writeBAR(_ bar: Int, offset: UInt64, data: UnsafeRawBufferPointer) { lastBARWrite = (bar, offset) }
}

@Suite struct PCIConfigSpaceTests {
    @Test func everySizeAndOffsetReadsTheSameBytes() {
        let f = TestFunction()
        let dword = configRead(f, 0)
        #expect(dword == 0x5678_1234)
        for offset in 0..<4 { #expect(configRead(f, offset, size: 1) == (dword >> (8 * UInt32(offset))) & 0xFF) }
        #expect(configRead(f, 2, size: 2) == 0x5678)
        #expect(configRead(f, 0x08) == 0xFF00_0002)          // class FF0000, revision 2
        #expect(configRead(f, 0x3D, size: 1) == 1)           // INTA#
        #expect(configRead(f, 0x100) == 0)                   // ECAM's extended space
    }

    @Test func readOnlyRegistersIgnoreWritesAndWritableOnesKeepTheirMask() {
        let f = TestFunction()
        configWrite(f, 0, 0xFFFF_FFFF)
        #expect(configRead(f, 0) == 0x5678_1234)
        configWrite(f, 0x04, 0xFFFF, size: 2)
        #expect(configRead(f, 0x04, size: 2) == 0x0407)      // I/O, memory, bus master, INTx disable
        configWrite(f, 0x3C, 0xAB, size: 1)
        #expect(configRead(f, 0x3C, size: 1) == 0xAB)
    }

    @Test func barSizingKeepsTheTypeBitsAndRestores() {
        let f = TestFunction()
        #expect(configRead(f, 0x10) == 0xE100_0000)
        configWrite(f, 0x10, 0xFFFF_FFFF)
        #expect(configRead(f, 0x10) == 0xFFFF_F000)          // 4 KiB, memory, 32-bit
        configWrite(f, 0x18, 0xFFFF_FFFF)
        #expect(configRead(f, 0x18) == 0xFFFF_FFE1)          // 32 bytes, I/O
        configWrite(f, 0x14, 0xFFFF_FFFF)
        #expect(configRead(f, 0x14) == 0)                    // undefined BAR: hardwired 0
        configWrite(f, 0x10, 0xE200_0123)
        #expect(configRead(f, 0x10) == 0xE200_0000)          // low bits below the size are 0
    }

    @Test func theCapabilityListWalksAsLinuxWalksIt() {
        let f = TestFunction()
        #expect(configRead(f, 0x06, size: 2) & 0x10 != 0)   // capabilities present
        var ids: [UInt32] = []
        var at = Int(configRead(f, 0x34, size: 1))
        while at != 0 && ids.count < 48 {
            #expect(at >= 0x40 && at % 4 == 0)
            ids.append(configRead(f, at, size: 1))
            at = Int(configRead(f, at + 1, size: 1))
        }
        #expect(ids == [0x09, 0x11])
    }

    @Test func decodingFollowsTheCommandRegisterAndSizing() {
        let f = TestFunction()
        #expect(f.decodedBARs.isEmpty)
        configWrite(f, 0x04, 0x2, size: 2)
        #expect(f.decodedBARs == [PCIBarMapping(index: 0, kind: .memory32, address: 0xE100_0000, size: 0x1000)])
        configWrite(f, 0x04, 0x3, size: 2)
        #expect(f.decodedBARs.count == 2)
        configWrite(f, 0x10, 0xFFFF_FFFF)                    // mid-sizing: not a placement
        #expect(f.decodedBARs.map(\.index) == [2])
    }
}

@Suite struct PCIRootTests {
    func makeRoot() -> PCIRoot {
        PCIRoot(mmioWindow: .init(base: 0xE100_0000, size: 0x100_0000), ioWindow: .init(base: 0xC000, size: 0x4000))
    }

    @Test func mechanismOneProbesLikeLinux() throws {
        let root = makeRoot()
        let ports = PCIConfigPorts(root: root)
        busWrite(ports, 3, 0x01, size: 1)                    // Linux's outb(0x01, 0xCFB): ignored
        busWrite(ports, 0, 0x8000_0000, size: 4)
        #expect(busRead(ports, 0, size: 4) == 0x8000_0000)
        #expect(busRead(ports, 4, size: 4) == 0x0008_1B36)   // 00:00.0 is the host bridge
        busWrite(ports, 0, 0x8000_0008, size: 4)
        #expect(busRead(ports, 4 + 2, size: 2) == 0x0600)    // class: host bridge
        #expect(busRead(ports, 4 + 3, size: 1) == 0x06)
        busWrite(ports, 0, 0x8000_0800, size: 4)             // 00:01.0: empty
        #expect(busRead(ports, 4, size: 4) == 0xFFFF_FFFF)
        let address = try root.plug(TestFunction())
        #expect(address.description == "00:01.0")
        #expect(busRead(ports, 4, size: 4) == 0x5678_1234)
        busWrite(ports, 0, 0x0000_0800, size: 4)             // enable bit clear: no cycle
        #expect(busRead(ports, 4, size: 4) == 0xFFFF_FFFF)
        busWrite(ports, 0, 0x8001_0800, size: 4)             // bus 1: nothing there
        #expect(busRead(ports, 4, size: 4) == 0xFFFF_FFFF)
        busWrite(ports, 0, 0x8000_0000, size: 4)
        #expect(busRead(ports, 5, size: 4) == 0xFFFF_FFFF)   // crosses the dword: refused
    }

    @Test func ecamAddressesBusDeviceFunctionRegister() throws {
        let root = makeRoot()
        _ = try root.plug(TestFunction())
        let ecam = PCIECAM(root: root)
        #expect(busRead(ecam, 1 << 15, size: 4) == 0x5678_1234)
        #expect(busRead(ecam, 1 << 15 | 2, size: 2) == 0x5678)
        #expect(busRead(ecam, 1 << 15 | 1 << 12, size: 4) == 0xFFFF_FFFF)   // function 1
        #expect(busRead(ecam, 1 << 15 | 0x200, size: 4) == 0)               // extended space
        #expect(busRead(ecam, 1 << 15 | 3, size: 2) == 0xFFFF)              // misaligned
    }

    @Test func barWindowsFollowTheGuestsPlacement() throws {
        let root = makeRoot()
        let f = TestFunction()
        let address = try root.plug(f)
        let ecam = PCIECAM(root: root)
        let base = UInt64(address.device) << 15
        let mmio = PCIBarWindow(root: root, kind: .memory32)
        let io = PCIBarWindow(root: root, kind: .io)
        #expect(busRead(mmio, 0x10, size: 4) == 0xFFFF_FFFF)                // decoding off
        busWrite(ecam, base | 4, 3, size: 2)
        #expect(busRead(mmio, 0x10, size: 4) == 0x10)                        // BAR0 + 0x10
        #expect(busRead(io, 0x4, size: 4) == 2 << 16 | 4)                    // BAR2 + 4
        // The guest moves BAR0: the old place goes dark, the new one answers.
        busWrite(ecam, base | 0x10, 0xE180_0000, size: 4)
        #expect(busRead(mmio, 0x10, size: 4) == 0xFFFF_FFFF)
        #expect(busRead(mmio, 0x80_0000 + 8, size: 4) == 8)
        busWrite(mmio, 0x80_0000 + 0x20, 1, size: 4)
        #expect(f.lastBARWrite! == (0, 0x20))
    }

    @Test func slotsRunOut() throws {
        let root = makeRoot()
        for _ in 1..<PCIRoot.slotCount { _ = try root.plug(TestFunction()) }
        #expect(throws: PCIError.self) { try root.plug(TestFunction()) }
    }

    @Test func theAllocatorAlignsAndRunsOut() throws {
        var a = PCIResourceAllocator(root: PCIRoot(mmioWindow: .init(base: 0xE100_0000, size: 0x8000), ioWindow: .init(base: 0xC000, size: 0x100)))
        #expect(try a.allocate(.io, size: 4) == 0xC000)
        #expect(try a.allocate(.io, size: 0x80) == 0xC080)
        #expect(try a.allocate(.memory32, size: 0x1000) == 0xE100_0000)
        #expect(try a.allocate(.memory32, size: 0x4000) == 0xE100_4000)
        #expect(throws: PCIAllocationError.self) { try a.allocate(.memory32, size: 0x4000) }
    }
}
