import ArgumentParser
import Glibc
import LinuxSupport
import Devices
import KVM
import Machine

/// `apus run`: build a machine and run a guest on it.
public struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a Linux kernel or a bare-metal guest.",
        discussion: """
        Linux: a bzImage entered through the 64-bit boot protocol, with an optional initrd and \
        command line. The guest console is COM1 (ttyS0) on your terminal; type Ctrl-A x to quit. The \
        machine is described to the guest with ACPI tables (an MP table with --acpi off).

        Bare metal: a flat 64-bit binary loaded at 1 MiB and started in long mode on every vCPU, \
        with the low 4 GiB identity-mapped, RDI = vCPU index and RSI = vCPU count (see \
        guest/bare/board.inc for the devices it can use). --disk and --rng attach virtio devices \
        to a bare-metal guest too, on any --transport: a guest of your own can drive (or attack) them.

        Every thread runs under a seccomp allow-list of the system calls its job needs (vCPU, \
        device I/O, main), installed once its set-up is done; a forbidden call stops apus with \
        one line naming the call and the thread (status 159, SIGSYS). --seccomp off runs without \
        filters, for debugging. The terminal is restored on every way out, a crash included.

        --control PATH serves a Unix socket (mode 0600, removed on exit; a stale one left by a \
        crashed apus is replaced, any other existing file is refused) that 'apus ctl PATH' talks \
        to: live statistics, pause and resume, an ACPI power-button shutdown, the balloon.

        Exit status: 0 when the guest powers off; 32 when it reboots; the byte a bare guest writes \
        to the debug-exit port (0x501); 70 when the guest crashes (triple fault, failed entry, KVM \
        internal error — with a register dump); 71 when apus fails; 128+N on signal N (Ctrl-A x \
        counts as SIGINT: 130).

        Examples:
          apus run --kernel vmlinuz --initrd initrd.img --cmdline "console=ttyS0"
          apus run --kernel vmlinuz --initrd initrd.img --cpus 2 --memory 1G
          apus run --kernel vmlinuz --console file=boot.log --acpi off
          apus run --kernel vmlinuz --initrd initrd.img --disk path=disk.img --rng
          apus run --kernel vmlinuz --initrd initrd.img --console virtio
          apus run --kernel vmlinuz --initrd initrd.img --net tap=apus0
          apus run --kernel vmlinuz --initrd initrd.img --net tap=apus0,mac=52:54:00:12:34:56
          apus run --kernel vmlinuz --initrd initrd.img --cpus 2 --net tap=apus0,vhost=on,queues=2
          apus run --kernel vmlinuz --initrd initrd.img --disk path=disk.img --transport pci
          apus run --kernel vmlinuz --initrd initrd.img --disk path=disk.img --transport pci --notify pio
          apus run --kernel vmlinuz --initrd initrd.img --rng --transport pci-transitional \
            --cmdline "console=ttyS0 virtio_pci.force_legacy=1"
          apus run --kernel vmlinuz --initrd initrd.img --memory 1G --balloon size=256M,stats=5
          apus run --bare guest/build/bare/hello.bin
          apus run --bare guest/build/bare/mmio-loop.bin --trace exits --stats
          apus run --kernel vmlinuz --initrd initrd.img --control /tmp/apus.sock   (then: apus ctl /tmp/apus.sock stats)
        """)

    @Option(name: .long, help: ArgumentHelp("Linux kernel (bzImage) to boot.", valueName: "file"))
    public var kernel: String?

    @Option(name: .long, help: ArgumentHelp("Initial ramdisk for the kernel.", valueName: "file"))
    public var initrd: String?

    @Option(name: .long, help: ArgumentHelp("Kernel command line.", valueName: "text"))
    public var cmdline: String = RunCommand.defaultCommandLine

    @Option(name: .long, help: ArgumentHelp("Describe the machine with ACPI tables (on) or an MP table only (off).", valueName: "on|off"))
    public var acpi: Toggle = .on

    @Option(name: .long, help: ArgumentHelp("Flat 64-bit binary to run as a bare-metal guest.", valueName: "file"))
    public var bare: String?

    @Option(name: .long, help: ArgumentHelp("A virtio-blk disk: a raw image file; repeatable. Writable disks are locked exclusively.", valueName: "path=IMG[,readonly=on]"))
    public var disk: [DiskSpec] = []

    @Option(name: .long, help: ArgumentHelp("A virtio-net interface on a Linux tap (created if missing, which needs CAP_NET_ADMIN); repeatable. MAC: random 52:54:00:xx:xx:xx unless given.", valueName: "tap=NAME[,mac=MAC][,vhost=on][,queues=N]"), transform: NetOption.parse)
    public var net: [NetSpec] = []

    @Flag(name: .long, help: "Add a virtio-rng entropy device (the guest's /dev/hwrng), fed by getrandom.")
    public var rng = false

    @Option(name: .long, help: ArgumentHelp("Add a virtio-balloon memory balloon: size= its size at boot (the guest gives that much RAM back), stats= poll the guest's memory statistics every SECONDS, deflate-on-oom=on lets the guest take pages back when it runs out, free-page-reporting=on lets it hand free memory back by itself. Plain --balloon: an empty balloon.", valueName: "[size=SIZE][,stats=SECONDS][,deflate-on-oom=on][,free-page-reporting=on]"))
    public var balloon: BalloonSpec?

    @Option(name: .long, help: ArgumentHelp("How virtio devices attach: pci (virtio-pci 1.0 with MSI-X, the default), pci-transitional (also the legacy I/O header), mmio (virtio-mmio 2), mmio-legacy (virtio-mmio 1).", valueName: "kind"))
    public var transport: VirtioTransport = .pci

    @Option(name: .long, help: ArgumentHelp("virtio-pci doorbells: mmio (memory BAR, KVM fast MMIO) or pio (I/O BAR, port writes).", valueName: "mmio|pio"))
    public var notify: NotifyMethod = .mmio

    @Option(name: .long, help: "Number of vCPUs.")
    public var cpus: Int = 1

    @Option(name: .long, help: ArgumentHelp("Guest RAM, e.g. 512M or 2G.", valueName: "size"))
    public var memory: String = "512M"

    @Option(name: .long, help: ArgumentHelp("Where the guest console goes: stdio (COM1), virtio (hvc0 on stdio), file=PATH or none.", valueName: "target"))
    public var console: ConsoleTarget = .stdio

    @Option(name: .long, help: ArgumentHelp("Trace events as they happen. Categories: exits.", valueName: "categories"))
    public var trace: [TraceCategory] = []

    @Flag(name: .long, help: "When the guest stops, print exit statistics and boot times.")
    public var stats = false

    @Option(name: .long, help: ArgumentHelp("Serve a control socket at PATH (owner-only; removed on exit) for 'apus ctl PATH': stats, pause, resume, shutdown, balloon.", valueName: "path"))
    public var control: String?

    @Option(name: .long, help: ArgumentHelp("Confine each thread with a seccomp allow-list (on), or run without filters to debug (off).", valueName: "on|off"))
    public var seccomp: Toggle = .on

    @Option(name: .long, help: ArgumentHelp("Debugging: once a thread of this kind is confined, make it call socket(), which no allow-list has, to see a violation.", valueName: "vcpu|io|main", visibility: .hidden))
    public var seccompProbe: ThreadKind?

    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1"

    /// The command line to boot: `--cmdline` if given, else the default for the console.
    var commandLine: String {
        if cmdlineGiven { return cmdline }
        return console == .virtio ? "console=hvc0 reboot=k panic=-1" : Self.defaultCommandLine
    }
    private var cmdlineGiven: Bool { cmdline != Self.defaultCommandLine }

    public init() {}

    /// The machine configuration these options describe (validated by `MachineConfig.validate`).
    public func machineConfig() throws -> MachineConfig {
        var config = MachineConfig()
        config.cpus = cpus
        do {
            config.memorySize = try parseSize(memory)
        } catch {
            throw ValidationError("--memory: \(error)")
        }
        config.traceExits = trace.contains(.exits)
        config.transport = transport
        config.notify = notify
        config.devices = disk.map { .disk(path: $0.path, readOnly: $0.readOnly) } + (rng ? [.rng] : [])
            + (console == .virtio ? [.console] : []) + net.map { .net($0) }
            + (balloon.map { [.balloon($0.options)] } ?? [])
        config.seccomp = SeccompSettings(enabled: seccomp == .on, probe: seccompProbe)
        config.controlSocketPath = control
        do {
            try config.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return config
    }

    public func validate() throws {
        switch (kernel, bare) {
        case (nil, nil): throw ValidationError("nothing to boot: give --kernel FILE (Linux) or --bare FILE")
        case (.some, .some): throw ValidationError("--kernel and --bare exclude each other")
        case (nil, .some) where initrd != nil: throw ValidationError("--initrd needs --kernel")
        case (nil, .some) where console == .virtio: throw ValidationError("--console virtio needs --kernel (a bare-metal guest's console is COM1)")
        case (nil, .some) where cpus > MemoryMap.bareMaxCPUs:
            throw ValidationError("--cpus \(cpus): a bare-metal guest runs on at most \(MemoryMap.bareMaxCPUs) vCPUs")
        default: break
        }
        if seccompProbe != nil && seccomp == .off { throw ValidationError("--seccomp-probe needs --seccomp on") }
        _ = try machineConfig()
    }

    public func run() throws {
        var config = try machineConfig()
        // Read everything first: a missing file must not start a guest.
        let image = try load(bare ?? kernel!, what: bare != nil ? "bare-metal guest" : "kernel")
        let ramdisk = try initrd.map { try load($0, what: "initrd") } ?? []
        let consoleFile = try console.openOutput()
        config.consoleOutput = console.sink(fd: consoleFile)
        config.consoleBulkOutput = console.bulkSink(fd: consoleFile)

        let machine: Machine
        do {
            machine = try Machine.assemble(config, board: bare != nil ? .bare() : .linux)
            if bare != nil {
                try machine.loadBare(image: image)
            } else {
                try machine.loadLinux(LinuxBoot(kernel: image, initrd: ramdisk, commandLine: commandLine, acpi: acpi == .on))
            }
        } catch {
            throw CLIError("\(error)")
        }

        // Warnings only now, so that a bad option or file still gets its one error line alone.
        let backend = KVMBackend.detect()
        if kernel != nil { warnAboutLinuxBoot(on: backend) }

        // SIGINT, SIGTERM and SIGHUP stop the machine cleanly from here on; only then does the
        // guest own the terminal (until it stops, or apus dies: see RawTerminal).
        let sandbox = machine.sandbox
        SignalWatcher.start(control: machine.control, sandbox: sandbox)
        let interactive = (console == .stdio || console == .virtio) && bare == nil
        let terminal = interactive ? RawTerminal(fd: 0) : nil
        defer { terminal?.restore() }
        let serial = machine.serial
        let deliver: @Sendable ([UInt8]) -> Int
        if let virtioConsole = machine.virtioConsole {
            deliver = { bytes in virtioConsole.receive(bytes) }
        } else {
            deliver = { bytes in serial.receive(bytes) }
        }
        let input = interactive ? try? ConsoleInput(fd: 0, control: machine.control, sandbox: sandbox, deliver: deliver) : nil
        // apus only reports and exits after the run: the main thread can be confined too.
        let reason = machine.run(confiningCaller: true)
        input?.join()
        terminal?.restore()
        if consoleFile > 2 { close(consoleFile) }
        report(reason, machine: machine, board: machine.testBoard)
        if case .guestCrash = reason, kernel != nil, !backend.runsLinux {
            fputsError("apus: the crash is most likely this host's /dev/kvm (\(backend.name)), which cannot run a stock Linux kernel: \(Self.linuxHint)")
        }
        throw ExitCode(reason.exitStatus)
    }

    static let linuxHint = "run Linux where /dev/kvm has VMX/SVM, or inside the nested test host (`make run` in the Apus source tree does that)"

    /// Says up front what the guest will meet: a /dev/kvm that cannot run Linux, or devices that
    /// a kernel booted without ACPI cannot find.
    private func warnAboutLinuxBoot(on backend: KVMBackend) {
        if !backend.runsLinux {
            fputsError("apus: warning: /dev/kvm here is \(backend.name), with no VMX/SVM behind it: a stock Linux kernel runs very slowly on it and then crashes; \(Self.linuxHint)")
        }
        if acpi == .off && !transport.isPCI && (!disk.isEmpty || rng || !net.isEmpty || console == .virtio || balloon != nil) {
            fputsError("apus: warning: with --acpi off, Linux finds virtio-mmio devices only through virtio_mmio.device= on its command line (apus adds it), which needs a kernel built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES and the driver built in: no Debian kernel has that, so these devices will most likely stay invisible; keep ACPI on (the default), or use --transport pci")
        }
    }

    private func load(_ path: String, what: String) throws -> [UInt8] {
        do {
            let bytes = try readWholeFile(path)
            guard !bytes.isEmpty else { throw CLIError("\(what) \(path) is empty") }
            return bytes
        } catch let e as CLIError {
            throw e
        } catch {
            throw CLIError("cannot read the \(what): \(error)")
        }
    }

    private func report(_ reason: StopReason, machine: Machine, board: TestBoard?) {
        switch reason {
        case .debugExit, .powerOff:
            break
        default:
            fputsError("\napus: \(reason)")
        }
        if stats, let s = machine.statistics {
            fputsError(s.report(pio: machine.pio, mmio: machine.mmio))
            if let pci = machine.pciStatisticsReport() { fputsError(pci) }
            let repeated = machine.events.repeated
            if !repeated.isEmpty {
                fputsError("device messages logged once, then only counted:\n"
                           + repeated.map { "  \($0.source): \($0.cause) ×\($0.count)" }.joined(separator: "\n"))
            }
            if let balloon = machine.balloon as? VirtioBalloon { fputsError(balloon.report) }
            if let board { fputsError(board.report()) }
            if kernel != nil { fputsError(machine.bootTimer.report) }
        }
    }
}

/// `--disk path=IMG[,readonly=on]`.
public struct DiskSpec: ExpressibleByArgument, Equatable, Sendable {
    public var path: String
    public var readOnly = false

    public init?(argument: String) {
        var path: String?
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { return nil }
            switch (kv[0], kv[1]) {
            case ("path", let p) where !p.isEmpty: path = p
            case ("readonly", "on"): readOnly = true
            case ("readonly", "off"): readOnly = false
            default: return nil
            }
        }
        guard let path else { return nil }
        self.path = path
    }

    public static var defaultCompletionKind: CompletionKind { .file() }
}

/// `--balloon [size=SIZE][,stats=SECONDS][,deflate-on-oom=on][,free-page-reporting=on]`; plain
/// `--balloon` arrives as `on` (see `RunCommand.normalizedArguments`).
public struct BalloonSpec: ExpressibleByArgument, Equatable, Sendable {
    public var options = BalloonOptions()

    public init?(argument: String) {
        guard argument != "on" && !argument.isEmpty else { return }
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { return nil }
            switch (kv[0], kv[1]) {
            case ("deflate-on-oom", "on"): options.deflateOnOOM = true
            case ("deflate-on-oom", "off"): options.deflateOnOOM = false
            case ("free-page-reporting", "on"): options.freePageReporting = true
            case ("free-page-reporting", "off"): options.freePageReporting = false
            case ("stats", let s):
                guard let seconds = Int(s), seconds > 0 else { return nil }
                options.statisticsInterval = seconds
            case ("size", let s):
                guard let bytes = try? parseSize(s) else { return nil }
                options.initialTarget = bytes
            default: return nil
            }
        }
    }
}

extension RunCommand {
    /// Options that may stand alone or take a value: a bare `--balloon` (at the end, or before
    /// another option) becomes `--balloon=on`, which ArgumentParser, whose options always take
    /// a value, can read.
    public static func normalizedArguments(_ arguments: [String]) -> [String] {
        arguments.indices.map { i in
            guard arguments[i] == "--balloon" else { return arguments[i] }
            let next = arguments.index(after: i)
            return next == arguments.endIndex || arguments[next].hasPrefix("-") ? "--balloon=on" : arguments[i]
        }
    }
}

extension VirtioTransport: ExpressibleByArgument {}
extension ThreadKind: ExpressibleByArgument {}
extension NotifyMethod: ExpressibleByArgument {}

/// `on` / `off` option values.
public enum Toggle: String, ExpressibleByArgument, Sendable {
    case on, off
}

/// Where the console goes.
public enum ConsoleTarget: ExpressibleByArgument, Equatable, Sendable {
    case stdio
    case virtio
    case file(String)
    case none

    public init?(argument: String) {
        switch argument {
        case "stdio": self = .stdio
        case "virtio": self = .virtio
        case "none": self = .none
        case _ where argument.hasPrefix("file=") && argument.count > 5: self = .file(String(argument.dropFirst(5)))
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["stdio", "virtio", "file=PATH", "none"] }

    /// The descriptor output goes to: stdout, a newly created file, or -1 for none.
    func openOutput() throws -> Int32 {
        switch self {
        case .stdio, .virtio: return 1
        case .none: return -1
        case let .file(path):
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw CLIError("--console file=\(path): \(SystemError.current("open"))") }
            return fd
        }
    }

    /// The same target for output that comes in pieces (virtio-console): one write(2) a piece.
    func bulkSink(fd: Int32) -> @Sendable (UnsafeRawBufferPointer) -> Void {
        guard fd >= 0 else { return { _ in } }
        // A console that cannot take output (a closed pipe) drops it: the guest runs on.
        return { buffer in try? writeAll(fd, buffer) }
    }

    func sink(fd: Int32) -> @Sendable (UInt8) -> Void {
        guard fd >= 0 else { return { _ in } }
        return { byte in
            var b = byte
            _ = write(fd, &b, 1)
        }
    }
}

/// What `--trace` can show.
public enum TraceCategory: String, ExpressibleByArgument, CaseIterable, Sendable {
    case exits
}

/// An error the CLI prints as one line, `apus: <message>`, with exit status 1.
public struct CLIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
