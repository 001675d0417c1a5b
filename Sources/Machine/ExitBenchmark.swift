import GuestMemory

/// `apus bench exits`, the Apus side: runs `guest/bare/bench-exits` on a test-board machine and
/// collects the cycle counts the guest measured for each kind of access.
public enum ExitBenchmark {
    /// What the guest times, in the order it reports them (keep in step with bench-exits.S).
    public enum Kind: Int, CaseIterable, Sendable {
        case noExit, cpuid, pioWriteUser, pioReadUser, mmioWriteUser, mmioReadUser,
             pioIOEventFD, mmioIOEventFD, mmioIOEventFDDatamatch, fastMMIOIOEventFD

        /// Stable identifier for JSON/CSV.
        public var key: String {
            switch self {
            case .noExit: "no-exit"
            case .cpuid: "cpuid"
            case .pioWriteUser: "pio-write-userspace"
            case .pioReadUser: "pio-read-userspace"
            case .mmioWriteUser: "mmio-write-userspace"
            case .mmioReadUser: "mmio-read-userspace"
            case .pioIOEventFD: "pio-ioeventfd"
            case .mmioIOEventFD: "mmio-ioeventfd"
            case .mmioIOEventFDDatamatch: "mmio-ioeventfd-datamatch"
            case .fastMMIOIOEventFD: "fast-mmio-ioeventfd"
            }
        }

        /// What a person reads in the table.
        public var label: String {
            switch self {
            case .noExit: "no exit (loop floor)"
            case .cpuid: "null exit in KVM (cpuid)"
            case .pioWriteUser: "PIO write → userspace"
            case .pioReadUser: "PIO read → userspace"
            case .mmioWriteUser: "MMIO write → userspace"
            case .mmioReadUser: "MMIO read → userspace"
            case .pioIOEventFD: "PIO ioeventfd"
            case .mmioIOEventFD: "MMIO ioeventfd (len 4)"
            case .mmioIOEventFDDatamatch: "MMIO ioeventfd (len 4, datamatch)"
            case .fastMMIOIOEventFD: "fast MMIO ioeventfd (len 0)"
            }
        }

        /// Rows where the exit reaches the VMM, so the VMM's own code is part of the cost.
        public var reachesUserspace: Bool {
            switch self {
            case .pioWriteUser, .pioReadUser, .mmioWriteUser, .mmioReadUser: true
            default: false
            }
        }
    }

    /// Where the guest reads its parameters (iterations, repetitions).
    public static let parameterBlock: UInt64 = 0x6000

    /// Runs the guest once for `repetitions` rounds of `iterations` accesses per kind and
    /// returns cycles per access, `[round][kind]`.
    public static func run(guest image: [UInt8], iterations: Int, repetitions: Int) throws -> [[Double]] {
        var config = MachineConfig()
        config.memorySize = 32 << 20
        config.consoleOutput = { _ in }
        let machine = try Machine(config: config)
        let board = try machine.installTestBoard()
        try machine.loadBare(image: image)
        try machine.memory.store(UInt64(iterations), at: GuestAddress(parameterBlock))
        try machine.memory.store(UInt64(repetitions), at: GuestAddress(parameterBlock + 8))
        let reason = machine.run()
        guard reason == .debugExit(0) else { throw MachineError("the benchmark guest stopped unexpectedly: \(reason)") }
        return try perAccess(board.probeMMIO.reports, iterations: iterations, repetitions: repetitions)
    }

    /// Turns the guest's reports (total cycles per measurement) into cycles per access.
    public static func perAccess(_ reports: [UInt64], iterations: Int, repetitions: Int) throws -> [[Double]] {
        let kinds = Kind.allCases.count
        guard reports.count == kinds * repetitions else {
            throw MachineError("the benchmark guest reported \(reports.count) values, expected \(kinds * repetitions)")
        }
        return (0..<repetitions).map { r in
            (0..<kinds).map { k in Double(reports[r * kinds + k]) / Double(iterations) }
        }
    }
}
