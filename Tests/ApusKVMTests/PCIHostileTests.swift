import Locking
import Machine
import PCI
import Testing
import Virtio

/// A guest that places BARs where they do not belong: over another device's BAR, over RAM.
/// Apus keeps running, says so once, and the device works again once the BAR is back.
@Suite struct PCIHostileTests {
    final class Log: @unchecked Sendable {
        let lines = Locked<[String]>([])
    }

    func write32(_ root: PCIRoot, _ device: UInt8, _ offset: Int, _ value: UInt32, size: Int = 4) {
        withUnsafeBytes(of: value) { root.writeConfig(PCIAddress(device: device), offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
    }
    func read32(_ root: PCIRoot, _ device: UInt8, _ offset: Int) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { root.readConfig(PCIAddress(device: device), offset: offset, into: $0) }
        return v
    }
    func doorbells(_ m: Machine, _ i: Int) -> [VirtioPCI.DoorbellAssignment] { m.virtioPCIPlacements[i].registeredDoorbells }

    @Test func barsOverEachOtherOrOverRAMAreRefusedOnceAndRecover() throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        let log = Log()
        var config = MachineConfig()
        config.transport = .pci
        config.devices = [.rng, .rng]
        config.log = { line in log.lines.withLock { $0.append(line) } }
        let m = try Machine.assemble(config, board: .linux)
        let root = try #require(m.pci)
        let (a, b) = (m.virtioPCIPlacements[0].address.device, m.virtioPCIPlacements[1].address.device)
        write32(root, a, 0x04, 0x7, size: 2)
        write32(root, b, 0x04, 0x7, size: 2)
        let barA = read32(root, a, 0x18) & ~0xF
        let barB = read32(root, b, 0x18) & ~0xF
        #expect(doorbells(m, 1) == [VirtioPCI.DoorbellAssignment(queue: 0, doorbell: .fastMMIO(UInt64(barB) + 0x3000))])
        #expect(m.virtioPCIPlacements[1].registeredDoorbells.count == 1)

        // B's BAR2 onto A's: KVM refuses the second ioeventfd on the same address.
        for _ in 0..<3 {
            write32(root, b, 0x18, barA)
            write32(root, b, 0x18, barB + 0x10_0000)
            write32(root, b, 0x18, barA)
        }
        #expect(m.virtioPCIPlacements[1].registeredDoorbells.count == 0)
        #expect(m.virtioPCIPlacements[0].registeredDoorbells.count == 1)
        let refusals = log.lines.withLock { $0 }.filter { $0.contains("not placed") }
        #expect(refusals.count == 1, "one line, not one per access: \(refusals)")

        // Over RAM (outside the PCI window): nothing is registered there.
        write32(root, b, 0x18, 0x10_0000)
        #expect(m.virtioPCIPlacements[1].registeredDoorbells.count == 0)

        // Back home: the doorbell is registered again.
        write32(root, b, 0x18, barB)
        #expect(m.virtioPCIPlacements[1].registeredDoorbells.count == 1)
        #expect(log.lines.withLock { $0 }.count == 1)
    }
}
