import ArgumentParser
import Glibc
import LinuxSupport

/// The options `apus bench boot` and `apus bench blk` share: what to boot, under which VMMs,
/// how often, and how to print the result.
struct LinuxBenchOptions: ParsableArguments {
    @Option(name: .customLong("vmm"), parsing: .upToNextOption,
            help: ArgumentHelp("The VMMs to compare (`apus` is accepted for apus-mmio); the first run starts with the first one.", valueName: "name"))
    var vmms: [BenchVMM] = BenchVMM.allCases

    @Option(name: .customLong("baseline"),
            help: ArgumentHelp("The VMM the ratios are taken against: each other VMM's median over its median. (default: apus-mmio, or the first apus-* in --vmm)", valueName: "name"))
    var baselineOption: BenchVMM?

    @Option(help: "Boots per VMM; the VMMs take turns, starting with a different one each run. (default: 5 for boot, 3 for blk)")
    var runs: Int?

    @Option(help: ArgumentHelp("Linux kernel (bzImage) every VMM boots.", valueName: "file"))
    var kernel = "guest/build/linux/vmlinuz"

    @Option(help: "vCPUs of the guest.")
    var cpus: Int = 1

    @Option(help: ArgumentHelp("Guest RAM, e.g. 512M.", valueName: "size"))
    var memory = "512M"

    @Option(help: ArgumentHelp("The qemu-system-x86_64 to compare with.", valueName: "file"))
    var qemu = "qemu-system-x86_64"

    @Option(name: .customLong("qemu-firmware"), help: ArgumentHelp("Directory passed to QEMU as -L (its BIOS and option ROMs).", valueName: "dir"))
    var qemuFirmware: String?

    @Option(help: ArgumentHelp("Seconds one boot may take before the benchmark gives up.", valueName: "seconds"))
    var timeout: Int = 600

    @Option(name: .customLong("log-dir"), help: ArgumentHelp("Where each VMM's stderr is kept, one file per boot (default: a new directory in $TMPDIR or /tmp).", valueName: "dir"))
    var logDirectory: String?

    @Flag(help: "Print JSON instead of the table.")
    var json = false

    @Flag(help: "Print CSV instead of the table.")
    var csv = false

    func validate() throws {
        guard !vmms.isEmpty else { throw ValidationError("--vmm needs at least one VMM") }
        guard Set(vmms).count == vmms.count else { throw ValidationError("--vmm lists a VMM twice (apus is apus-mmio)") }
        if let baselineOption, !vmms.contains(baselineOption) {
            throw ValidationError("--baseline \(baselineOption.rawValue) is not among the --vmm compared")
        }
        guard runs.map({ (1...100).contains($0) }) ?? true else { throw ValidationError("--runs must be 1 to 100") }
        guard (1...64).contains(cpus) else { throw ValidationError("--cpus must be 1 to 64") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
        _ = try memoryMiB()
    }

    func memoryMiB() throws(ValidationError) -> UInt64 {
        guard let bytes = try? parseSize(memory), bytes % (1 << 20) == 0, bytes >= 64 << 20 else {
            throw ValidationError("--memory must be a whole number of MiB, at least 64M (got '\(memory)')")
        }
        return bytes >> 20
    }

    /// The `--log-dir` directory (created if missing), or a new private one: a fixed name in a
    /// shared /tmp could be planted with symlinks by another user.
    func makeLogDirectory() throws(CLIError) -> String {
        if let logDirectory {
            try mkdirs(logDirectory)
            return logDirectory
        }
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/apus-bench.XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CLIError("cannot create a log directory in \(base): \(SystemError.current("mkdtemp"))")
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The column every ratio is relative to: apus-mmio unless told otherwise, the column the
    /// reports before virtio-pci called `apus`, so their ratios and later ones stay comparable.
    var baseline: BenchVMM {
        baselineOption ?? (vmms.contains(.apusMMIO) ? .apusMMIO : vmms.first(where: \.isApus) ?? vmms[0])
    }

    var qemuSetup: QEMUSetup { QEMUSetup(binary: qemu, firmware: qemuFirmware) }

    func render(_ report: LinuxBenchReport) -> String {
        json ? report.json() : csv ? report.csv() : report.table()
    }
}
