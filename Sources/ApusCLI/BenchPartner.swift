/// The host's side of a benchmark whose guest needs a counterpart while it runs: `apus bench
/// net`'s iperf3 clients on the tap's host end. `BenchGuestRun` hands it each `APUS-BENCH:` mark
/// as it arrives; what it measured, it keeps for the benchmark's figures.
///
/// While it acts, nobody reads the VMM's console: a guest that prints a lot meanwhile blocks on
/// the full pipe. It must bound its own time, too: the boot's timeout is checked only between
/// console lines.
protocol BenchPartner: AnyObject {
    /// Called once per mark key, in the order the guest printed them. Throwing ends the boot
    /// (the VMM is stopped) with that error.
    func guestPrinted(_ key: String, _ mark: BenchGuestRun.Mark) throws(CLIError)
}

/// The partner of benchmarks whose guest works alone (`apus bench boot` and `blk`).
final class NoPartner: BenchPartner {
    func guestPrinted(_ key: String, _ mark: BenchGuestRun.Mark) throws(CLIError) {}
}
