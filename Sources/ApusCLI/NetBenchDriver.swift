import Glibc
import LinuxSupport

/// `apus bench net`'s host side of one boot: when the guest says its iperf3 server listens
/// (`APUS-BENCH: ready`), runs every test against it as the client, then tells the guest to
/// finish by connecting to its stop port (guest/linux/scenarios/bench-net.sh).
final class NetBenchDriver: BenchPartner {
    /// The guest's scenario waits for one connection on this port, then powers off.
    static let stopPort: UInt16 = 5202

    let client: IperfClient
    let tests: [NetBenchTest]
    /// iperf3's stderr for test T goes to "\(logPrefix)-T.log".
    let logPrefix: String
    /// Names the boot in progress lines, e.g. "apus-pci, run 2".
    let label: String
    /// One report per test, in `tests`' order, once the guest was ready.
    private(set) var results: [IperfResult] = []

    init(client: IperfClient, tests: [NetBenchTest], logPrefix: String, label: String = "") {
        self.client = client
        self.tests = tests
        self.logPrefix = logPrefix
        self.label = label
    }

    func guestPrinted(_ key: String, _ mark: BenchGuestRun.Mark) throws(CLIError) {
        guard key == "ready" else { return }
        for test in tests {
            // A line per test: a boot takes minutes in the nested host, and when the host dies
            // the last line says which test it died in.
            if !label.isEmpty { fputsError("bench net: \(label): \(test.name)") }
            results.append(try client.run(test, errorLog: "\(logPrefix)-\(test.name).log"))
        }
        try connectAndClose(client.server, Self.stopPort)
    }

    /// The figures of every test, in the order of their metrics.
    func figures() throws(CLIError) -> [Double] {
        guard results.count == tests.count else { throw CLIError("the guest never said its iperf3 server was ready") }
        var values: [Double] = []
        for (test, result) in zip(tests, results) {
            do { values += try test.figures(result) } catch { throw CLIError("\(test.name): \(error)") }
        }
        return values
    }
}

/// Opens a TCP connection to `address`:`port` and closes it: the guest's signal to stop.
private func connectAndClose(_ address: String, _ port: UInt16) throws(CLIError) {
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = port.bigEndian
    guard inet_pton(AF_INET, address, &target.sin_addr) == 1 else { throw CLIError("\(address) is not an IPv4 address") }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw CLIError("cannot tell the guest to stop: \(SystemError.current("socket"))") }
    defer { close(fd) }
    // On Linux the send timeout bounds connect() too: a guest that died must not hang the bench.
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let rc = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        throw CLIError("cannot tell the guest to stop (\(address):\(port)): \(SystemError.current("connect"))")
    }
}
