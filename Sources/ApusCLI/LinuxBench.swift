import ArgumentParser
import Glibc
import KVM
import LinuxSupport

/// The loop behind `apus bench boot`, `blk` and `net`: boot the same guest under each column's
/// VMM in turn, `runs` times, collect each boot's figures, and report medians and ratios to a
/// baseline.
///
/// The columns alternate, and each run starts with a different one, so slow drifts of a noisy
/// host (thermal, other tenants, the nested host's own timers) spread over all of them.
struct LinuxBench<Partner: BenchPartner> {
    let name: String
    let options: LinuxBenchOptions
    let columns: [BenchColumn]
    let baseline: BenchColumn
    let runs: Int
    /// Where each boot's VMM stderr goes (`makeLogDirectory`).
    let logDirectory: String
    let guest: BenchGuest
    let metrics: [LinuxBenchReport.Metric]
    /// Describes the setup in one line for the report.
    let setup: String
    /// A fresh host-side partner for one boot of a column (its iperf3 log is named after both).
    let partner: (_ column: BenchColumn, _ run: Int) -> Partner
    /// The figures of one boot, one per metric.
    let figures: (BenchGuestRun, Partner) throws(CLIError) -> [Double]
    /// Whether a failed boot is counted and the benchmark goes on (`apus bench net`), rather
    /// than ending it: the report then shows the failures per column.
    var keepGoing = false

    func run() throws(CLIError) -> LinuxBenchReport {
        try checkHost()
        let apus = try currentExecutable()
        fputsError("bench \(name): \(runs) run\(runs == 1 ? "" : "s") of \(columns.map(\.name).joined(separator: ", ")); VMM logs in \(logDirectory)")
        var samples = Array(repeating: Array(repeating: [Double](), count: columns.count), count: metrics.count)
        var failures = Array(repeating: 0, count: columns.count)
        for run in 0..<runs {
            for turn in 0..<columns.count {
                let v = (run + turn) % columns.count, column = columns[v]
                let log = "\(logDirectory)/\(name)-\(column.name)-\(run + 1).log"
                let command = column.command(for: guest, apus: apus, qemu: options.qemuSetup)
                func failure(_ error: CLIError) -> CLIError {
                    CLIError("\(column.name), run \(run + 1): \(error)\n  command: \(([command.path] + command.arguments).joined(separator: " "))\n  its stderr: \(log)")
                }
                let partner = partner(column, run + 1)
                // A run counts only if the guest finished and the VMM then exited cleanly.
                let values: [Double]
                do throws(CLIError) {
                    let boot = try BenchGuestRun(command: command, timeout: Double(options.timeout), errorLog: log, partner: partner)
                    do throws(CLIError) {
                        values = try figures(boot, partner)
                        guard boot.exitStatus == 0 else { throw CLIError("the VMM exited with status \(boot.exitStatus), not 0") }
                    } catch {
                        throw CLIError("\(error)\(boot.consoleTail)")
                    }
                } catch {
                    guard keepGoing else { throw failure(error) }
                    failures[v] += 1
                    fputsError("bench \(name): run \(run + 1)/\(runs), \(column.name): FAILED, going on: \(failure(error))")
                    continue
                }
                for (m, value) in values.enumerated() { samples[m][v].append(value) }
                let shown = zip(metrics, values).map { "\($0.label) \(format($1, digits: $0.digits))" }
                fputsError("bench \(name): run \(run + 1)/\(runs), \(column.name): \(shown.joined(separator: ", "))")
            }
        }
        return LinuxBenchReport(benchmark: name, setup: setup, runs: runs, columns: columns, baseline: baseline,
                                metrics: metrics, samples: samples, showsDataPath: guest.net != nil,
                                failures: failures.contains { $0 > 0 } ? failures : [])
    }

    /// Refuses early, with the way out, where a stock Linux guest cannot boot at all.
    private func checkHost() throws(CLIError) {
        for file in [guest.kernel, guest.initrd] + (guest.disk.map { [$0] } ?? []) where access(file, R_OK) != 0 {
            throw CLIError("cannot read \(file) (build the guest with `make guest-linux`, or pass the path)")
        }
        if KVMBackend.detect() == .pvm {
            throw CLIError("""
                /dev/kvm here is kvm_pvm, on which a stock Linux kernel cannot boot; run this benchmark \
                inside the nested test host instead: `make bench-\(name)` (scripts/bench-linux.sh \(name))
                """)
        }
    }
}

extension LinuxBench where Partner == NoPartner {
    /// A benchmark whose guest works alone (boot, blk): its columns are the VMMs of --vmm (or
    /// all five), the baseline --baseline's.
    init(name: String, options: LinuxBenchOptions, runs: Int, logDirectory: String, guest: BenchGuest,
         metrics: [LinuxBenchReport.Metric], setup: String,
         figures: @escaping (BenchGuestRun) throws(CLIError) -> [Double]) throws(ValidationError) {
        let columns = options.columns(defaults: BenchVMM.allCases)
        self.init(name: name, options: options, columns: columns, baseline: try options.baseline(of: columns), runs: runs,
                  logDirectory: logDirectory, guest: guest, metrics: metrics, setup: setup,
                  partner: { _, _ in NoPartner() }, figures: { boot, _ throws(CLIError) in try figures(boot) })
    }
}

/// The path of the running apus executable, so the benchmark can start it as it starts QEMU.
func currentExecutable() throws(CLIError) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { throw CLIError("cannot find the apus executable (/proc/self/exe)") }
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// `mkdir -p`.
func mkdirs(_ path: String) throws(CLIError) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/\(part)"
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw CLIError("cannot create \(prefix): \(SystemError.current("mkdir"))")
        }
    }
}
