import ArgumentParser
import Glibc
import LinuxSupport
import Machine

/// `apus run`: build a machine and run a guest on it.
public struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a guest.",
        discussion: """
        A bare-metal guest is a flat 64-bit binary: Apus loads it at 1 MiB and starts every vCPU
        there in long mode, with the low 4 GiB identity-mapped, RDI = vCPU index and RSI = vCPU
        count. It talks to the serial port (0x3f8), the debug-exit port (0x501: the byte written
        becomes apus's exit status) and the test devices described in docs/architecture.md.

        Exit status: the debug-exit byte; 0 when a guest powers off; 32 on guest reboot; 70 when
        the guest crashes (triple fault and other fatal exits, with a register dump); 71 when
        apus fails; 128+N on signal N.

        Examples:
          apus run --bare guest/build/hello.bin
          apus run --bare guest/build/mmio-loop.bin --trace exits --stats
          apus run --bare guest/build/smp.bin --cpus 2 --memory 64M
        """)

    @Option(name: .long, help: ArgumentHelp("Flat 64-bit binary to run as a bare-metal guest.", valueName: "file"))
    public var bare: String?

    @Option(name: .long, help: "Number of vCPUs.")
    public var cpus: Int = 1

    @Option(name: .long, help: ArgumentHelp("Guest RAM, e.g. 512M or 2G.", valueName: "size"))
    public var memory: String = "256M"

    @Option(name: .long, help: ArgumentHelp("Trace events as they happen. Categories: exits.", valueName: "categories"))
    public var trace: [TraceCategory] = []

    @Flag(name: .long, help: "Print exit statistics (per exit kind and per device) when the guest stops.")
    public var stats = false

    public init() {}

    /// The validated machine configuration these options describe.
    public func machineConfig() throws -> MachineConfig {
        var config = MachineConfig()
        guard cpus >= 1 else { throw ValidationError("--cpus must be at least 1") }
        config.cpus = cpus
        do {
            config.memorySize = try parseSize(memory)
        } catch {
            throw ValidationError("--memory: \(error)")
        }
        guard config.memorySize >= MachineConfig.minimumMemory, config.memorySize % (2 << 20) == 0 else {
            throw ValidationError("--memory must be a multiple of 2 MiB and at least 2M (got \(memory))")
        }
        config.traceExits = trace.contains(.exits)
        return config
    }

    public func validate() throws {
        guard bare != nil else {
            throw ValidationError("nothing to boot: give --bare FILE")
        }
        _ = try machineConfig()
    }

    public func run() throws {
        let config = try machineConfig()
        let image: [UInt8]
        do {
            image = try readWholeFile(bare!)
        } catch {
            throw CLIError("cannot read the bare-metal guest: \(error)")
        }
        let machine: Machine
        do {
            machine = try Machine(config: config)
            let board = try machine.installTestBoard()
            try machine.loadBare(image: image)
            let reason = machine.run()
            report(reason, machine: machine, board: board)
            throw ExitCode(reason.exitStatus)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CLIError("\(error)")
        }
    }

    private func report(_ reason: StopReason, machine: Machine, board: TestBoard?) {
        switch reason {
        case .debugExit, .powerOff:
            break
        default:
            fputsError("apus: \(reason)")
        }
        if stats, let s = machine.statistics {
            fputsError(s.report(pio: machine.pio, mmio: machine.mmio))
            if let board { fputsError(board.report()) }
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
