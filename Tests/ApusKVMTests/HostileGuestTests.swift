import Devices
import Glibc
import Locking
import Machine
import Synchronization
import Testing

/// The malicious-guest suite: bare-metal guests (`guest/bare/hostile-*.S`) that attack the real
/// virtio devices and the UART on a board built by `Machine.assemble`, the way `apus run --bare`
/// builds it. Each run must end with the guest's own exit status 0 within the watchdog's limit
/// (Apus alive, nothing hung), each device must work after the guest's reset (the guests check
/// that themselves; the tests check the data reached the image), and what the devices logged
/// must stay bounded: once per cause and device, not once per access or notify.
@Suite(.serialized) struct HostileGuestTests {
    /// What a run's devices said and printed.
    final class Capture: Sendable {
        let lines = Locked<[String]>([])
        /// Bytes the virtio console wrote, and the small writes as text (the guests' markers;
        /// the 64 KiB pieces of a huge descriptor are only counted).
        let bulkBytes = Atomic<Int>(0)
        private let bulkSmall = Locked<[UInt8]>([])

        var log: [String] { lines.withLock { $0 } }
        var bulkText: String { String(decoding: bulkSmall.withLock { $0 }, as: UTF8.self) }

        func configure(_ config: inout MachineConfig) {
            config.log = { line in self.lines.withLock { $0.append(line) } }
            config.consoleBulkOutput = { piece in
                self.bulkBytes.add(piece.count, ordering: .relaxed)
                if piece.count < 256 { self.bulkSmall.withLock { $0 += piece } }
            }
        }
    }

    /// A scratch disk image, removed at the end of the test.
    final class Image {
        let path: String
        let fd: Int32
        init(sectors: Int) throws {
            var template = Array("/tmp/apus-hostile-XXXXXX".utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            try #require(fd >= 0)
            path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            try #require(ftruncate(fd, off_t(sectors * 512)) == 0)
        }
        deinit { unlink(path); close(fd) }

        /// Whether sector `n` holds the hostile guests' check pattern for step n: i * 7 + n.
        func holdsCheckPattern(sector n: Int) -> Bool {
            var sector = [UInt8](repeating: 0, count: 512)
            let got = sector.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 512, off_t(n * 512)) }
            return got == 512 && sector == (0..<512).map { UInt8(truncatingIfNeeded: $0 * 7 + n) }
        }
    }

    static func lines(_ log: [String], containing text: String) -> [String] { log.filter { $0.contains(text) } }

    /// hostile-ring.S: every ring and descriptor attack on virtio-blk, virtio-rng and
    /// virtio-console over virtio-mmio (the step list is in the guest's header).
    @Test func ringAndDescriptorAttacksOverVirtioMMIO() throws {
        let image = try Image(sectors: 2048)
        let capture = Capture()
        var config = MachineConfig()
        config.memorySize = 512 << 20          // the 4 GiB attacks describe 4 GiB with 256 MiB
        config.transport = .mmio
        config.devices = [.disk(path: image.path, readOnly: false), .rng, .console]
        capture.configure(&config)
        guard let run = try KVMTestSupport.runAssembled("hostile-ring", config: config) else { return }

        #expect(run.reason == .debugExit(0), "the guest failed at step \(run.reason.exitStatus) (100 + n: the device did not recover from attack n)")
        // The last check wrote its pattern through to the image.
        #expect(image.holdsCheckPattern(sector: 39))

        // virtio-rng: a chain of 256 buffers of 256 MiB each (64 GiB over the same RAM), then
        // 256 such chains at once. The device bounds what one request can cost the host.
        let reports = run.board.probePIO.reports
        #expect(reports.count == 2, "bytes written into the huge rng chains: \(reports)")
        for written in reports {
            #expect(written > 0 && written <= 64 * 1024, "one rng request made the host produce \(written) bytes")
        }

        // virtio-console: the 4 GiB write went out whole, plus the guest's five markers.
        let marker = "console ok\n"
        #expect(capture.bulkText.ranges(of: marker).count == 5, "markers: \(capture.bulkText.debugDescription)")
        #expect(capture.bulkBytes.load(ordering: .relaxed) == (4 << 30) + 5 * marker.utf8.count)

        // Each broken ring is reported once — not once more for the 1000 notifies that follow —
        // and each cause is logged once per device, then only counted (`GuestEventLog`).
        let log = capture.log
        let events = run.machine.events
        #expect(events.count("virtio-blk0", cause: "broken ring") == 18 + 2, "blk chains 2–19, avail jumps 20–21")
        #expect(events.count("virtio-rng", cause: "broken ring") == 1, "rng 35")
        #expect(events.count("virtio-console", cause: "broken ring") == 1, "console 37")
        #expect(events.count("virtio-blk0", cause: "refused DRIVER_OK") == 7, "queue layouts 27–33")
        #expect(events.count("virtio-blk0", cause: "request without header or status") == 32, "step 34")
        let broken = Self.lines(log, containing: "the device needs a reset")
        #expect(broken.count == 3, "one line per device:\n\(broken.joined(separator: "\n"))")
        #expect(Self.lines(log, containing: "refusing DRIVER_OK").count == 1)
        let headerless = Self.lines(log, containing: "without header or status byte")
        #expect(headerless.count == 1, "\(headerless.count) lines for one cause")
        let other = log.filter { !broken.contains($0) && !$0.contains("refusing DRIVER_OK") && !headerless.contains($0) }
        #expect(other.isEmpty, "unexpected device messages:\n\(other.joined(separator: "\n"))")
    }

    /// hostile-pci.S: configuration-space and register garbage of every size, the state machine
    /// out of order, the pci_cfg window, a broken ring and BARs moved under the live device —
    /// on a modern virtio-blk, one whose doorbells are ports, and a transitional one.
    @Test(arguments: [(VirtioTransport.pci, NotifyMethod.mmio), (.pci, .pio), (.pciTransitional, .mmio)])
    func registerAndConfigGarbageOverVirtioPCI(transport: VirtioTransport, notify: NotifyMethod) throws {
        let image = try Image(sectors: 2048)
        let capture = Capture()
        var config = MachineConfig()
        config.memorySize = 32 << 20
        config.transport = transport
        config.notify = notify
        config.devices = [.disk(path: image.path, readOnly: false), .rng]
        capture.configure(&config)
        guard let run = try KVMTestSupport.runAssembled("hostile-pci", config: config) else { return }

        #expect(run.reason == .debugExit(0), "the guest failed at step \(run.reason.exitStatus) (100 + n: the device did not recover from attack n)")
        #expect(image.holdsCheckPattern(sector: 21))
        // Every doorbell is back where its BAR is: virtio-blk's and the neighbour's it was placed
        // over (one each, and a second in the legacy header of a transitional device).
        let perDevice = transport == .pciTransitional ? 2 : 1
        #expect(run.machine.virtioPCIPlacements.map(\.registeredDoorbells.count) == [perDevice, perDevice])

        let log = capture.log
        #expect(Self.lines(log, containing: "refusing DRIVER_OK").count == 1, "step 16")
        #expect(Self.lines(log, containing: "the device needs a reset").count == 1, "step 19")
        // Step 21: KVM refuses a second ioeventfd on the rng's doorbell — said once, although
        // the BAR moved there and back (and the config garbage moved it hundreds of times).
        let refused = Self.lines(log, containing: "not placed")
        #expect(refused.count == (notify == .mmio ? 1 : 0), "\(refused)")
        #expect(log.count <= 3, "\(log.joined(separator: "\n"))")
    }

    /// hostile-uart.S: the loopback flood (the FIFO stays 16 bytes; nothing leaks to the
    /// console), register garbage on every COM1 port, and a storm of interrupt-line edges.
    @Test func uartLoopbackFloodAndGarbage() throws {
        let capture = Capture()
        var config = MachineConfig()
        config.memorySize = 32 << 20
        capture.configure(&config)
        guard let run = try KVMTestSupport.runAssembled("hostile-uart", config: config) else { return }

        #expect(run.reason == .debugExit(0), "the guest failed at step \(run.reason.exitStatus)")
        // Not a byte of the loopback flood reached the console: only the storm's dots and the
        // guest's last line.
        let expected = String(repeating: ".", count: 4000) + "hostile-uart: alive\n"
        #expect(run.console == expected, "\(run.console.utf8.count) bytes: \(run.console.suffix(80).debugDescription)")
        // The flood really was one exit per byte (string I/O aside), and the line ended low.
        #expect((run.machine.statistics?[.pioWrite] ?? 0) > 100_000)
        #expect(!run.machine.serial.lineIsHigh)
        #expect(capture.log.isEmpty, "\(capture.log)")
    }

    /// hostile-race.S: vCPU 1 resets virtio-blk while vCPU 0 keeps it busy; a reset must wait
    /// for the queue run in progress and leave nothing of it behind (the status reads 0).
    @Test func statusWritesOnOneVCPURacingIOOnAnother() throws {
        let image = try Image(sectors: 32768)
        let capture = Capture()
        var config = MachineConfig()
        config.cpus = 2
        config.memorySize = 64 << 20
        config.devices = [.disk(path: image.path, readOnly: false)]
        config.transport = .mmio   // the guest drives slot 0 of virtio-mmio
        capture.configure(&config)
        guard let run = try KVMTestSupport.runAssembled("hostile-race", config: config) else { return }

        #expect(run.reason == .debugExit(0), "the guest failed at step \(run.reason.exitStatus) (100 + n: the device did not recover from step n)")
        #expect(image.holdsCheckPattern(sector: 3))
        // [completions vCPU 0 saw during the free-for-all, resets that found step 3's batch
        // half done] — how much racing there was, for the record (timing decides it).
        let reports = run.board.probePIO.reports
        #expect(reports.count == 2, "\(reports)")

        // Every message is a broken ring (the free-for-all's index races, step 3's loops), and
        // there is at most one per device session: 1000 restarts by vCPU 1, 256 batches, and
        // a few starts by vCPU 0 — not one per notify.
        let log = capture.log
        #expect(log.allSatisfy { $0.contains("the device needs a reset") }, "\(log.prefix(10))")
        #expect(log.count <= 1000 + 256 + 3)
        // Once per cause and device: the broken rings of all those sessions are one cause.
        #expect(log.count <= 2, "\(log.count) lines")
    }
}
