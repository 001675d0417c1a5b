import Devices
import Glibc
import Machine
import Testing
import Virtio

/// `guest/bare/virtio-pci.S` on real KVM: a bare-metal driver that finds a virtio-blk function
/// by scanning bus 0, reads its BARs and capabilities, programs MSI-X and moves a sector each
/// way. Each variant moves the doorbell or the device ID, which the guest must discover.
@Suite(.serialized) struct BarePCIGuestTests {
    @Test func aBareDriverFindsAModernVirtioPCIBlockDeviceAndMovesASector() throws {
        try runDriver(options: .init())
    }

    /// The notify capability points at an I/O BAR: the guest rings with `out`, and the
    /// ioeventfd sits on a port.
    @Test func theDriverRingsAPortWhenTheNotifyCapabilityPointsAtAnIOBAR() throws {
        try runDriver(options: .init(notifyByPortIO: true))
    }

    /// A transitional device (1AF4:1001) keeps the legacy header in BAR0 but has the modern
    /// capabilities too, which a modern driver uses.
    @Test func aTransitionalDeviceServesTheModernDriverToo() throws {
        try runDriver(options: .init(transitional: true))
    }

    private func runDriver(options: VirtioPCI.Options, sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard KVMTestSupport.kvmAvailable(sourceLocation: sourceLocation) else { return }
        var template = Array("/tmp/apus-disk-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0, sourceLocation: sourceLocation)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path); close(fd) }
        #expect(ftruncate(fd, 64 * 512) == 0, sourceLocation: sourceLocation)

        var disk: FileBlockBackend?
        guard let run = try KVMTestSupport.run("virtio-pci", prepare: { machine, _ in
            let backend = try FileBlockBackend(path: path, readOnly: false)
            disk = backend
            try machine.addVirtioPCI(VirtioBlock(name: "vda", backend: backend, serial: "test"), options: options)
        }, sourceLocation: sourceLocation) else { return }
        #expect(run.reason == .debugExit(0), "the guest driver failed at step \(run.reason.exitStatus)", sourceLocation: sourceLocation)
        #expect(run.board.probePIO.reports == [2], "MSI-X completion interrupts taken", sourceLocation: sourceLocation)
        let transport = try #require(run.machine.virtioPCIPlacements.first?.transport, sourceLocation: sourceLocation)
        #expect(transport.deviceStatus == 0x0F, "ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK", sourceLocation: sourceLocation)
        // Both doorbells were caught by the ioeventfd that followed the guest's BAR decoding.
        #expect(transport.notificationsThroughExits == 0, "notifies must be served by the ioeventfd", sourceLocation: sourceLocation)
        // The data reached the image file: sector 1 holds the pattern i * 7 + 3.
        var sector = [UInt8](repeating: 0, count: 512)
        let n = sector.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 512, 512) }
        #expect(n == 512, sourceLocation: sourceLocation)
        #expect(sector == (0..<512).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }, sourceLocation: sourceLocation)
        _ = disk
    }
}
