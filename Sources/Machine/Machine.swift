import CKVM
import DeviceBus
import Devices
import Diagnostics
import GuestMemory
import KVM
import LinuxSupport
import Locking
import PCI
import Virtio

/// The Apus board: a KVM VM with RAM, the in-kernel irqchip, vCPUs, buses and devices.
///
/// Assembly happens in `init` and the `register`/`install` calls, before `run`; after `run`
/// starts, the buses are frozen (so the exit path reads them without locks).
public final class Machine: @unchecked Sendable {
    public let config: MachineConfig
    public let kvm: KVMSystem
    public let vm: VirtualMachine
    public let memory: GuestMemory
    public let vcpus: [VCPU]
    public let control = MachineControl()
    /// The board's own I/O thread (test-board doorbells); each virtio device has its own.
    public let ioLoop: IOEventLoop
    /// One I/O thread per virtio device, so one device's slow I/O (an fdatasync) never stalls
    /// another's queues. Started by `run`.
    public private(set) var deviceLoops: [IOEventLoop] = []
    /// IOAPIC pins, GSIs, MSI routes and irqfds.
    public let interrupts: InterruptRouter
    /// The PCI root complex, once a PCI device is added.
    public internal(set) var pci: PCIRoot?
    /// The virtio-pci functions, in slot order, with their INTx GSI.
    public internal(set) var virtioPCIPlacements: [VirtioPCIPlacement] = []
    /// Where the next BAR goes.
    var pciAllocator: PCIResourceAllocator?
    /// The bare-metal test board, on a `.bare` board.
    public internal(set) var testBoard: TestBoard?
    /// What the devices reported, once per cause (`--stats` shows the repeats).
    public let events: GuestEventLog
    /// The virtio console, when the config has one (the CLI feeds it typed input).
    public internal(set) var virtioConsole: VirtioConsole?
    /// The memory balloon, when the config has one (the control socket drives it).
    public internal(set) var balloon: (any BalloonControl)?
    /// COM1.
    public let serial: Serial8250
    /// Boot-time marks: first console byte and the guest's init.
    public let bootTimer = BootTimer()
    public private(set) var pio = Bus(name: "pio")
    public private(set) var mmio = Bus(name: "mmio")
    /// GSI routes, starting with the irqchip defaults; committed by `addMSIRoute`.
    /// Eventfds and other objects that must live as long as the VM.
    private var keepAlive: [AnyObject] = []
    /// The virtio-mmio devices, in slot order.
    public internal(set) var virtioMMIOPlacements: [VirtioMMIOPlacement] = []

    /// Keeps `object` alive as long as the machine.
    func keep(_ object: AnyObject) { keepAlive.append(object) }
    /// Exit counts of the last `run`, merged over all vCPUs.
    public private(set) var statistics: ExitStatistics?
    /// Each vCPU's counters during `run` (read live by `liveStatistics`).
    private let exitCounters = Locked<[LiveExitCounters]>([])
    /// The control socket (`--control`), served while `run` runs.
    public internal(set) var controlServer: ControlServer?
    /// The power button, on a Linux board described with ACPI (`apus ctl shutdown`).
    public internal(set) var powerButton: PowerButton?

    /// The exit counts so far, merged over all vCPUs; readable from any thread while the
    /// machine runs (all zero before `run`).
    public func liveStatistics() -> ExitStatistics {
        var total = ExitStatistics(pioDevices: pio.entries.count, mmioDevices: mmio.entries.count)
        for s in liveVCPUStatistics() { total.merge(s) }
        return total
    }

    /// The exit counts so far of each vCPU, in vCPU order (empty before `run`).
    public func liveVCPUStatistics() -> [ExitStatistics] {
        exitCounters.withLock { $0 }.map { $0.snapshot() }
    }

    /// Builds the VM, in the order KVM requires: VM → TSS/identity map → irqchip → PIT →
    /// memory → vCPUs (each with CPUID, MSRs, FPU, LAPIC) → legacy devices.
    public init(config: MachineConfig) throws {
        self.config = config
        events = GuestEventLog(sink: config.log)
        try config.validate()
        let kvm = try KVMSystem(path: config.kvmPath)
        guard config.cpus >= 1, config.cpus <= min(kvm.maxVCPUs, 254) else {
            throw MachineError("--cpus \(config.cpus) is out of range: this KVM allows 1 to \(min(kvm.maxVCPUs, 254))")
        }
        self.kvm = kvm
        vm = try kvm.createVM()
        try vm.setIdentityMapAddress(MemoryMap.identityMapPage)
        try vm.setTSSAddress(MemoryMap.tss)
        try vm.createIRQChip()
        try vm.createPIT()

        memory = try GuestMemory(ranges: MemoryMap.ramRanges(size: config.memorySize).map { (GuestAddress($0.start), $0.size) })
        for (slot, region) in memory.regions.enumerated() {
            try vm.setMemoryRegion(slot: UInt32(slot), guestAddress: region.start.rawValue, size: region.size, host: region.host)
        }

        let cpuid = try kvm.supportedCPUID()
        var vcpus: [VCPU] = []
        for id in 0..<config.cpus {
            let vcpu = try vm.createVCPU(id: UInt32(id))
            try CPUSetup.configure(vcpu, cpuid: cpuid, cpuCount: config.cpus)
            vcpus.append(vcpu)
        }
        self.vcpus = vcpus
        ioLoop = try IOEventLoop(name: "apus-io")
        interrupts = InterruptRouter(vm: vm)

        // COM1's interrupt output drives IRQ 4 as a level: the in-kernel PIC and IOAPIC see an
        // edge exactly when the UART's modelled line rises (ISA IRQs are edge-triggered).
        let vm = self.vm
        let output = config.consoleOutput
        let timer = bootTimer
        serial = Serial8250(output: { byte in timer.noteConsoleByte(); output(byte) }, setLine: { high in
            try? vm.setIRQLine(gsi: MemoryMap.Port.com1IRQ, high: high)
        })
        try registerPIO(serial, port: MemoryMap.Port.com1, length: 8)
        // The boot timer only records when the guest reached /init (for --stats and the boot
        // benchmark); nothing the guest does with it changes how apus ends.
        try registerMMIO(bootTimer, address: MemoryMap.Platform.bootTimer, length: MemoryMap.Platform.bootTimerLength)
    }

    // MARK: Assembly

    /// Puts `device` on the port-I/O bus.
    public func registerPIO(_ device: any BusDevice, port: UInt16, length: UInt64) throws {
        try pio.register(device, base: UInt64(port), length: length)
    }

    /// Puts `device` on the MMIO bus.
    public func registerMMIO(_ device: any BusDevice, address: UInt64, length: UInt64) throws {
        guard !memory.regions.contains(where: { address < $0.start.rawValue + $0.size && $0.start.rawValue < address &+ length }) else {
            throw MachineError("MMIO range 0x\(String(address, radix: 16)) overlaps guest RAM")
        }
        try mmio.register(device, base: address, length: length)
    }

    /// Registers an ioeventfd for `address` (a new eventfd unless `event` is given) and hands
    /// its signals to `handler` on the I/O thread.
    @discardableResult
    public func addIOEvent(at address: IOEventAddress, match: IOEventMatch = .any, event: EventFD? = nil,
                           handler: @escaping IOEventLoop.Handler) throws -> EventFD {
        let event = try event ?? EventFD()
        try vm.registerIOEvent(event, at: address, match: match)
        try ioLoop.add(event, handler: handler)
        keepAlive.append(event)
        return event
    }

    /// Routes `gsi` to `message` and returns an irqfd that raises it when signalled.
    public func addMSIRoute(gsi: UInt32, _ message: MSIMessage) throws -> EventFD {
        try interrupts.setMSIRoute(gsi: gsi, message)
        let event = try interrupts.irqfd(gsi: gsi)
        keepAlive.append(event)
        return event
    }

    /// A device's I/O threads (started with the machine): one, or one per queue group the
    /// device asks for (`VirtioHostIO`, which also gets to watch its host descriptors — a tap —
    /// on them).
    /// `firstLoop`, made earlier with `makeDeviceLoop` (the device needed its thread before it
    /// existed: the balloon's timer), serves the first group.
    func makeDeviceThreads(for device: any VirtioDevice, firstLoop: IOEventLoop? = nil) throws -> DeviceThreads {
        let hostIO = device as? any VirtioHostIO
        let groups = hostIO?.queueGroups ?? []
        var loops: [IOEventLoop] = []
        for g in 0..<max(groups.count, 1) {
            if g == 0, let firstLoop {
                loops.append(firstLoop)
                continue
            }
            // Thread names are at most 15 bytes.
            let name = g == 0 ? "io-\(device.name)" : "io-\(device.name.prefix(8))-q\(g)"
            loops.append(try IOEventLoop(name: String(name.prefix(15))))
        }
        deviceLoops += loops.filter { loop in !deviceLoops.contains { $0 === loop } }
        try hostIO?.attach(to: loops)
        var groupOf: [Int: Int] = [:]
        for (g, queues) in groups.enumerated() { for q in queues { groupOf[q] = g } }
        return DeviceThreads(loops: loops, groupOf: groupOf)
    }

    /// A new I/O thread named for a device, started with the machine, for a device that needs
    /// its thread before it is built (pass it to `addVirtio(_:loop:)`).
    func makeDeviceLoop(for name: String) throws -> IOEventLoop {
        // Thread names are at most 15 bytes.
        let loop = try IOEventLoop(name: String("io-\(name)".prefix(15)))
        deviceLoops.append(loop)
        return loop
    }

    /// Hands a vhost device the doorbells of the queues the kernel serves (which no I/O thread
    /// watches: the kernel must be their only reader).
    func attachKernelDoorbells(_ device: any VirtioDevice, _ events: [EventFD]) {
        guard let kernel = device as? any VirtioKernelQueues else { return }
        kernel.attachDoorbells(Dictionary(uniqueKeysWithValues: kernel.kernelQueues.map { ($0, events[$0].fd) }))
    }

    /// Attaches a virtio device with the configured transport. `loop` is its I/O thread when
    /// the caller made it first (a device that schedules work on it); else one is made.
    public func addVirtio(_ device: any VirtioDevice, loop: IOEventLoop? = nil) throws {
        switch config.transport {
        case .mmio: try addVirtioMMIO(device, loop: loop)
        case .mmioLegacy: try addVirtioMMIO(device, version: 1, loop: loop)
        case .pci, .pciTransitional:
            try addVirtioPCI(device, options: .init(transitional: config.transport == .pciTransitional, notifyByPortIO: config.notify == .pio), loop: loop)
        }
    }

    // MARK: Running

    /// Starts the I/O thread and one thread per vCPU, waits until the machine stops, and
    /// returns why. Exit statistics are in `statistics` afterwards.
    ///
    /// With `config.seccomp` on, every thread `run` starts confines itself before it does its
    /// work (`ThreadSandbox`); with `confiningCaller`, so does the calling thread, once every
    /// other thread has started. That is for a caller that only reports and exits afterwards
    /// (`apus run`): a filter is never lifted.
    public func run(confiningCaller: Bool = false) -> StopReason {
        installKickSignalHandler()
        let sandbox = self.sandbox
        let control = self.control
        do {
            for loop in [ioLoop] + deviceLoops {
                let name = loop.name
                try loop.start { sandbox.confineOrStop(.deviceIO, name: name, control: control) }
            }
        } catch {
            return .vmmError("\(error)")
        }
        let tracer = config.traceExits ? ExitTracer(pio: pio, mmio: mmio) : nil
        let counters = vcpus.map { _ in LiveExitCounters(pioDevices: pio.entries.count, mmioDevices: mmio.entries.count) }
        exitCounters.withLock { $0 = counters }
        if let controlServer {
            do {
                try controlServer.start(target: MachineControlTarget(self), sandbox: sandbox, control: control)
            } catch {
                ioLoop.stop()
                for loop in deviceLoops { loop.stop() }
                return .vmmError("\(error)")
            }
        }
        var threads: [PosixThread] = []
        for (vcpu, stats) in zip(vcpus, counters) {
            let runner = VCPURunner(vcpu: vcpu, pio: pio, mmio: mmio, control: control, tracer: tracer, stats: stats)
            let name = "apus-vcpu\(vcpu.id)"
            control.parking.threadStarting()
            do {
                let thread = try PosixThread.start(name: name) {
                    defer { control.parking.threadEnded() }
                    unblockKickSignal()
                    // Before the first KVM_RUN: from here on the guest can act.
                    guard sandbox.confineOrStop(.vcpu, name: name, vcpuFD: vcpu.fd, control: control) else { return }
                    runner.run()
                }
                control.attach(vcpu, thread: thread)
                threads.append(thread)
            } catch {
                control.parking.threadEnded()
                control.requestStop(.vmmError("\(error)"))
            }
        }
        if confiningCaller { sandbox.confineOrStop(.main, name: "main", control: control) }
        // Every vCPU thread ends once the machine stops; only then may they be forgotten
        // (a kick must never reach a joined thread) and joined.
        control.waitForStop()
        control.detachAll()
        for t in threads { t.join() }
        controlServer?.stop()
        ioLoop.stop()
        for loop in deviceLoops { loop.stop() }
        statistics = liveStatistics()
        return control.stopReason ?? .vmmError("the vCPUs stopped without a reason")
    }
}

/// The I/O threads of one device and which of them serves each queue.
struct DeviceThreads {
    let loops: [IOEventLoop]
    let groupOf: [Int: Int]
    /// The thread that waits on queue `q`'s doorbell.
    func loop(forQueue q: Int) -> IOEventLoop { loops[groupOf[q] ?? 0] }
    /// The device's first thread (interrupt resampling and the like).
    var first: IOEventLoop { loops[0] }
}
