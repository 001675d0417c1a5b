import ArgumentParser
import Glibc
import LinuxSupport

/// The options `apus bench boot`, `blk` and `net` share: what to boot, under which VMMs, how
/// often, and how to print the result.
struct LinuxBenchOptions: ParsableArguments {
    @Option(name: .customLong("vmm"), parsing: .upToNextOption,
            help: ArgumentHelp("The VMMs to compare (`apus` is accepted for apus-mmio); the first run starts with the first one. (default: all five for boot and blk; apus-pci qemu-q35 for net)", valueName: "name"))
    var vmmList: [BenchVMM] = []

    @Option(name: .customLong("baseline"),
            help: ArgumentHelp("The column the ratios are taken against: each other column's median over its median; net's vhost-net columns end in -vhost. (default: apus-mmio, or the first apus-* column)", valueName: "name"))
    var baselineOption: BenchColumn?

    @Option(help: "Boots per column; the columns take turns, starting with a different one each run. (default: 5 for boot, 3 for blk and net)")
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
        guard Set(vmmList).count == vmmList.count else { throw ValidationError("--vmm lists a VMM twice (apus is apus-mmio)") }
        // Whether a vhost column is compared, only the command knows (`baseline(of:)`).
        if let baselineOption, !vmmList.isEmpty, !vmmList.contains(baselineOption.vmm) {
            throw ValidationError("--baseline \(baselineOption.name) is not among the --vmm compared")
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

    /// The VMMs compared: --vmm's, or the command's `defaults`.
    func vmms(defaults: [BenchVMM]) -> [BenchVMM] { vmmList.isEmpty ? defaults : vmmList }

    /// The report's columns: each VMM (--vmm's or `defaults`) once per NIC data path in `vhost`
    /// (off, on), VMM by VMM, so that a VMM's data paths sit side by side.
    func columns(defaults: [BenchVMM], vhost: [Bool] = [false]) -> [BenchColumn] {
        vmms(defaults: defaults).flatMap { vmm in vhost.map { BenchColumn(vmm, vhost: $0) } }
    }

    /// The column every ratio is relative to: apus-mmio unless told otherwise, the column the
    /// reports before virtio-pci called `apus`, so their ratios and later ones stay comparable;
    /// without it, the first apus column with apus's own data path. Throws when --baseline names
    /// a column that is not compared.
    func baseline(of columns: [BenchColumn]) throws(ValidationError) -> BenchColumn {
        if let baselineOption {
            guard columns.contains(baselineOption) else {
                throw ValidationError("--baseline \(baselineOption.name) is not among the columns compared (\(columns.map(\.name).joined(separator: ", ")))")
            }
            return baselineOption
        }
        return columns.first { $0 == BenchColumn(.apusMMIO) } ?? columns.first { $0.vmm.isApus && !$0.vhost }
            ?? columns.first { $0.vmm.isApus } ?? columns[0]
    }

    var qemuSetup: QEMUSetup { QEMUSetup(binary: qemu, firmware: qemuFirmware) }

    func render(_ report: LinuxBenchReport) -> String {
        json ? report.json() : csv ? report.csv() : report.table()
    }
}
