import Devices
import Glibc
import Machine
import Testing

/// Each bare-metal guest from `guest/bare`, on real KVM, checking what the guest observed and
/// what the VMM saw — not only that it exited.
@Suite(.serialized) struct BareGuestTests {
    @Test func helloPrintsItsGreetingAndExitsZero() throws {
        guard let run = try KVMTestSupport.run("hello") else { return }
        #expect(run.reason == .debugExit(0))
        #expect(run.console == "Hello from the Apus bare-metal guest!\n")
        let stats = try #require(run.machine.statistics)
        #expect(stats[.pioWrite] == run.console.utf8.count + 1)   // one exit per byte, plus the exit port
    }

    /// After `run` no thread is left to kick: a stop requested late (a signal as apus exits)
    /// must never pthread_kill a joined thread.
    @Test func aStoppedMachineKicksNoThread() throws {
        guard let run = try KVMTestSupport.run("smp", cpus: 2) else { return }
        #expect(run.machine.control.attachedThreads == 0)
        run.machine.control.requestStop(.signal(SIGTERM))
        #expect(run.machine.control.stopReason == run.reason)
    }

    /// The debug-exit port is a test device: a Linux board has nothing at 0x501.
    @Test func onlyTheBareMetalBoardHasTheDebugExitPort() throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        var config = MachineConfig()
        config.memorySize = 64 << 20
        let linuxBoard = try Machine(config: config)
        #expect(!linuxBoard.pio.entries.contains { $0.base == UInt64(MemoryMap.Port.debugExit) })
        _ = try linuxBoard.installTestBoard()
        #expect(linuxBoard.pio.entries.contains { $0.base == UInt64(MemoryMap.Port.debugExit) })
    }

    @Test func debugExitStatusReachesTheCaller() throws {
        guard let run = try KVMTestSupport.run("exit-status") else { return }
        #expect(run.reason == .debugExit(3))
        #expect(run.reason.exitStatus == 3)
    }

    @Test func tripleFaultIsDiagnosed() throws {
        guard let run = try KVMTestSupport.run("triple-fault") else { return }
        guard case let .guestCrash(why) = run.reason else {
            Issue.record("expected a crash, got \(run.reason)")
            return
        }
        #expect(why.contains("triple fault"))
        for field in ["RIP=0x10000", "CR0=", "CR3=0x9000", "CR4=", "EFER=0x500"] {
            #expect(why.contains(field), "diagnosis lacks \(field): \(why)")
        }
        #expect(run.reason.exitStatus == StopReason.guestCrashStatus)
    }

    @Test func portIORoundTripsAreAnsweredByTheVMM() throws {
        guard let run = try KVMTestSupport.run("pio-loop") else { return }
        #expect(run.reason == .debugExit(0), "the guest saw a wrong value: reports \(run.board.probePIO.reports)")
        #expect(run.board.probePIO.reports == [3000])
        #expect(run.board.probePIO.reads == 3000)
        #expect(run.board.probePIO.writes == 3001)                // + the report
        #expect(run.machine.statistics?[.pioRead] == 3000)
    }

    @Test func mmioRoundTripsAreAnsweredByTheVMM() throws {
        guard let run = try KVMTestSupport.run("mmio-loop") else { return }
        #expect(run.reason == .debugExit(0), "the guest saw a wrong value: reports \(run.board.probePIO.reports)")
        #expect(run.board.probePIO.reports == [4000])
        #expect(run.board.probeMMIO.reads == 4000 && run.board.probeMMIO.writes == 4000)
        #expect(run.machine.statistics?[.mmioWrite] == 4000)
    }

    @Test func ioeventfdsFireWithoutExitingToUserspace() throws {
        guard let run = try KVMTestSupport.run("ioeventfd") else { return }
        #expect(run.reason == .debugExit(0))
        let b = run.board
        for d in [b.doorbellPIO, b.doorbellFast, b.doorbellMMIO] {
            #expect(d.signals == 100, "\(d.name) signals")
            #expect(d.exits.count == 0, "\(d.name) reached userspace")
        }
        // Datamatch: only value 1 signals; the 50 writes of 2 exit like any MMIO write.
        #expect(b.doorbellMatch.signals == 100)
        #expect(b.doorbellMatch.exits.count == 50)
        #expect(run.machine.statistics?[.mmioWrite] == 50)
    }

    @Test func irqfdInterruptsReachTheGuest() throws {
        guard let run = try KVMTestSupport.run("irqfd") else { return }
        #expect(run.reason == .debugExit(0))
        #expect(run.board.probePIO.reports == [10], "interrupts the guest's handler counted")
        #expect(run.board.doorbellInterrupt.signals == 10)
        #expect(run.board.doorbellInterrupt.exits.count == 0)
        #expect(run.machine.statistics?[.mmioWrite] == 0, "the doorbell must never exit to userspace")
    }

    @Test func signalMSIInterruptsReachTheGuest() throws {
        guard let run = try KVMTestSupport.run("irqfd", interrupts: .signalMSI) else { return }
        #expect(run.reason == .debugExit(0))
        #expect(run.board.probePIO.reports == [10])
    }

    @Test func aDeassignedIOEventFDExitsToUserspaceAgain() throws {
        guard let run = try KVMTestSupport.run("ioeventfd", prepare: { machine, board in
            for d in [board.doorbellPIO, board.doorbellFast] {
                try machine.vm.unregisterIOEvent(d.event, at: d.address, match: d.match)
            }
        }) else { return }
        #expect(run.reason == .debugExit(0))
        let b = run.board
        for d in [b.doorbellPIO, b.doorbellFast] {
            #expect(d.signals == 0, "\(d.name) still signalled")
            #expect(d.exits.count == 100, "\(d.name) writes must now exit")
        }
        #expect(b.doorbellMMIO.signals == 100 && b.doorbellMMIO.exits.count == 0)
    }

    @Test func eachVCPUReportsItsOwnAPICID() throws {
        guard let run = try KVMTestSupport.run("smp", cpus: 2) else { return }
        #expect(run.reason == .debugExit(0))
        let reports = Set(run.board.probePIO.reports)
        #expect(reports == [0, 1, 0x100, 0x101], "LAPIC IDs and CPUID initial APIC IDs")
    }

    @Test func aSpinningVCPUIsKickedOutOfKVMRun() throws {
        // The watchdog stands in for Ctrl-C: after 1 s it asks the machine to stop, which
        // must kick the vCPU out of KVM_RUN even though the guest never exits on its own.
        guard let run = try KVMTestSupport.run("spin", cpus: 2, timeoutSeconds: 1) else { return }
        guard case let .vmmError(why) = run.reason else {
            Issue.record("expected the watchdog's stop, got \(run.reason)")
            return
        }
        #expect(why.contains("watchdog"))
        #expect((run.machine.statistics?[.interrupted] ?? 0) >= 2)
    }
}

@Suite struct KVMSetupTests {
    @Test func refusesMoreVCPUsThanKVMAllows() throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        var config = MachineConfig()
        config.cpus = 100_000
        #expect(throws: MachineError.self) { _ = try Machine(config: config) }
    }

    @Test func missingDeviceGetsAnActionableError() {
        var config = MachineConfig()
        config.kvmPath = "/nonexistent/kvm"
        do {
            _ = try Machine(config: config)
            Issue.record("opened a missing device")
        } catch {
            #expect("\(error)".contains("no such device"))
        }
    }
}

@Suite struct ExitBenchmarkTests {
    @Test func everyKindIsMeasuredInEveryRound() throws {
        guard KVMTestSupport.kvmAvailable(), let image = KVMTestSupport.bareGuest("bench-exits") else { return }
        // Timing is not asserted (no thresholds in tests); what each kind did is.
        let rounds = try ExitBenchmark.run(guest: image, iterations: 50, repetitions: 2)
        #expect(rounds.count == 2)
        for round in rounds {
            #expect(round.count == ExitBenchmark.Kind.allCases.count)
            #expect(round.allSatisfy { $0 > 0 })
        }
    }
}

@Suite struct VirtioGuestTests {
    @Test func aBareVirtioDriverWritesAndReadsSectorsThroughIOEventFDAndIRQFD() throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        var template = Array("/tmp/apus-disk-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        #expect(fd >= 0)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path); close(fd) }
        #expect(ftruncate(fd, 64 * 512) == 0)

        var disk: FileBlockBackend?
        guard let run = try KVMTestSupport.run("virtio-blk", prepare: { machine, _ in
            let backend = try FileBlockBackend(path: path, readOnly: false)
            disk = backend
            try machine.addVirtioMMIO(VirtioBlock(name: "vda", backend: backend, serial: "test"))
        }) else { return }
        #expect(run.reason == .debugExit(0), "the guest driver failed at step \(run.reason.exitStatus)")
        #expect(run.board.probePIO.reports == [2], "completion interrupts taken")
        let transport = try #require(run.machine.virtioMMIOPlacements.first?.transport)
        #expect(transport.notificationsThroughExits == 0, "QueueNotify must be served by the ioeventfd")
        // The data reached the image file: sector 1 holds the pattern i * 7 + 3.
        var sector = [UInt8](repeating: 0, count: 512)
        let n = sector.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 512, 512) }
        #expect(n == 512)
        #expect(sector == (0..<512).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) })
        _ = disk
    }
}
