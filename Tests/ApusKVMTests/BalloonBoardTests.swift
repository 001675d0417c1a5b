import Devices
import Machine
import PCI
import Testing
import Virtio

/// `--balloon` builds the same device on every transport: the guest finds device type 5, and
/// `Machine.balloon` is the control side's handle on it.
@Suite struct BalloonBoardTests {
    @Test(arguments: VirtioTransport.allCases)
    func theBalloonIsOnEveryTransport(_ transport: VirtioTransport) throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        var config = MachineConfig()
        config.memorySize = 64 << 20
        config.transport = transport
        config.devices = [.rng, .balloon(BalloonOptions(initialTarget: 16 << 20))]
        config.log = { _ in }
        let m = try Machine.assemble(config, board: .linux)
        let balloon = try #require(m.balloon)
        #expect(balloon.sizes == (16 << 20, 0))
        if transport.isPCI {
            let root = try #require(m.pci)
            var ids: UInt32 = 0
            withUnsafeMutableBytes(of: &ids) { root.readConfig(m.virtioPCIPlacements[1].address, offset: 0, into: $0) }
            #expect(ids == (transport == .pci ? 0x1045_1AF4 : 0x1002_1AF4))
        } else {
            var id: UInt32 = 0
            withUnsafeMutableBytes(of: &id) { _ = m.mmio.read(m.virtioMMIOPlacements[1].base + 8, data: $0) }
            #expect(id == 5)
            #expect(m.virtioMMIOPlacements[1].name == "virtio-balloon")
        }
    }
}
