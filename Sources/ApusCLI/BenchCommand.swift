import ArgumentParser
import LinuxSupport
import Machine

/// `apus bench`: measurements a person can reproduce on their own machine.
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure what virtualization costs on this machine.",
        subcommands: [ExitsBenchCommand.self, BootBenchCommand.self, BlkBenchCommand.self, NetBenchCommand.self])
    public init() {}
}

/// `apus bench exits`: cycles per guest access for each kind of exit, apus beside a minimal C loop.
public struct ExitsBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "exits",
        abstract: "Cycles per access for PIO, MMIO and ioeventfd exits (the virtio 1.0 question).",
        discussion: """
        A bare-metal guest (guest/bare/bench-exits.S) reads the TSC around N accesses of each kind — \
        port I/O and MMIO handled in userspace, port I/O and MMIO served by ioeventfds, fast MMIO (a \
        length-0 ioeventfd), a cpuid exit handled inside KVM, and a loop without exits as the floor \
        — and reports cycles per access. Each round runs the guest under apus and then under a \
        minimal C KVM_RUN loop (guest/bench/kvm-ref.c) doing the same work, so the apus/C ratio of \
        the userspace rows is apus's own overhead. Rounds alternate to spread machine noise over \
        both; the table shows medians and the range.

        Examples:
          apus bench exits
          apus bench exits --iterations 20000 --rounds 11 --json
          apus bench exits --svg exits.svg --csv > exits.csv
        """)

    @Option(help: "Accesses per measurement.")
    public var iterations: Int = 5000

    @Option(help: "Rounds; each runs the guest once under apus and once under the C loop.")
    public var rounds: Int = 7

    @Option(help: ArgumentHelp("The benchmark guest.", valueName: "file"))
    public var guest: String = "guest/build/bare/bench-exits.bin"

    @Option(help: ArgumentHelp("The C reference loop; 'none' to skip it.", valueName: "file"))
    public var reference: String = "guest/build/bench/kvm-ref"

    @Flag(help: "Print JSON instead of the table.")
    public var json = false

    @Flag(help: "Print CSV instead of the table.")
    public var csv = false

    @Option(help: ArgumentHelp("Also write a bar chart (SVG, log scale) to this file.", valueName: "file"))
    public var svg: String?

    public init() {}

    public func validate() throws {
        guard (1...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be 1 to 1000000") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1 to 100") }
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
    }

    public func run() throws {
        let image: [UInt8]
        do { image = try readWholeFile(guest) } catch {
            throw CLIError("cannot read the benchmark guest (build it with `make guests`): \(error)")
        }
        let useReference = reference != "none"
        var apus: [[Double]] = []
        var c: [[Double]] = []
        for round in 1...rounds {
            if !json && !csv { fputsError("bench: round \(round)/\(rounds)") }
            do {
                apus += try ExitBenchmark.run(guest: image, iterations: iterations, repetitions: 1)
            } catch {
                throw CLIError("\(error)")
            }
            if useReference {
                c += try runReference()
            }
        }
        let report = ExitBenchReport(iterations: iterations, rounds: rounds, apus: apus, reference: useReference ? c : nil)
        print(json ? report.json() : csv ? report.csv() : report.table(), terminator: "")
        if let svg {
            do {
                try writeFile(svg, report.svg())
            } catch {
                throw CLIError("cannot write \(svg): \(error)")
            }
        }
    }

    private func runReference() throws -> [[Double]] {
        let result: (status: Int32, output: String)
        do {
            result = try runProcess(reference, [guest, String(iterations), "1"])
        } catch {
            throw CLIError("cannot run the C reference (build it with `make bench-tools`, or pass --reference none): \(error)")
        }
        guard result.status == 0 else { throw CLIError("the C reference \(reference) exited with status \(result.status)") }
        let values = result.output.split(separator: "\n").compactMap { line -> UInt64? in
            line.hasPrefix("report ") ? UInt64(line.dropFirst(7)) : nil
        }
        do {
            return try ExitBenchmark.perAccess(values, iterations: iterations, repetitions: 1)
        } catch {
            throw CLIError("the C reference: \(error)")
        }
    }
}
