import PCI
import Testing

@Suite struct MSIXTableTests {
    func write(_ t: inout MSIXTable, _ offset: Int, _ value: UInt64, size: Int = 4) -> MSIXTable.Effects {
        withUnsafeBytes(of: value) { t.writeTable(offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
    }
    func read(_ t: MSIXTable, _ offset: Int, size: Int = 4) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { t.readTable(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
        return v
    }
    func pba(_ t: MSIXTable) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { t.readPBA(offset: 0, into: $0) }
        return v
    }

    @Test func vectorsStartMaskedAndDisabled() {
        let t = MSIXTable(vectors: 3)
        #expect(t.messageControl == 2)                        // table size - 1, disabled, unmasked function
        for v in 0..<3 { #expect(read(t, 16 * v + 12) == 1) }  // vector control: masked
        #expect(!t.deliverable(0))
    }

    @Test func aMaskedVectorIsPendingAndDeliveredOnUnmask() {
        var t = MSIXTable(vectors: 2)
        _ = t.writeMessageControl(0x8000)
        _ = write(&t, 16, 0xFEE0_0000)
        _ = write(&t, 24, 0x41)
        let fired = t.fire(1)
        #expect(!fired)                                        // still masked
        #expect(pba(t) == 0b10)
        let e = write(&t, 28, 0)                               // unmask
        #expect(e.deliver == [1])
        #expect(e.reroute.count == 1 && e.reroute[0].vector == 1 && e.reroute[0].message == MSIXMessage(address: 0xFEE0_0000, data: 0x41))
        #expect(pba(t) == 0)
        let firedNow = t.fire(1)
        #expect(firedNow)
    }

    @Test func theFunctionMaskHoldsEveryVector() {
        var t = MSIXTable(vectors: 2)
        _ = t.writeMessageControl(0x8000)
        _ = write(&t, 12, 0)
        let open = t.fire(0)
        _ = t.writeMessageControl(0xC000)                      // function mask
        let held = t.fire(0)
        #expect(open && !held && t.isPending(0))
        let e = t.writeMessageControl(0x8000)
        #expect(e.deliver == [0] && !t.isPending(0))
    }

    @Test func disablingDropsTheRoutesInUse() {
        var t = MSIXTable(vectors: 2)
        _ = t.writeMessageControl(0x8000)
        _ = write(&t, 12, 0)
        let e = t.writeMessageControl(0)
        #expect(e.reroute.map(\.vector) == [0] && e.reroute.allSatisfy { $0.message == nil })   // vector 1 had none
    }

    @Test func qwordAccessesAndOddSizesOrOffsets() {
        var t = MSIXTable(vectors: 2)
        _ = write(&t, 0, 0x1_FEE0_1000, size: 8)                // address low and high in one go
        #expect(read(t, 0, size: 8) == 0x1_FEE0_1000)
        let none = MSIXTable.Effects()
        let odd = write(&t, 2, 0xFFFF, size: 2)                  // odd size: dropped
        let misaligned = write(&t, 6, 0xFFFF_FFFF)               // misaligned: dropped
        let past = write(&t, 32, 1)                              // past the table: dropped
        #expect(odd == none && misaligned == none && past == none)
        #expect(read(t, 0, size: 8) == 0x1_FEE0_1000)
        #expect(read(t, 1, size: 1) == 0 && read(t, 40) == 0)
        let noSuchVector = t.fire(7)
        #expect(!noSuchVector)                                  // no such vector: nothing
        _ = write(&t, 12, 0xFFFF_FFFE)                          // reserved control bits stay 0
        #expect(read(t, 12) == 0)
    }
}
