/// One iperf3 measurement of `apus bench net`, run by the host as the client of the guest's
/// iperf3 server, so that every figure comes from the host's side, the same way for every VMM.
struct NetBenchTest: Equatable {
    enum Direction: String {
        /// The guest sends (iperf3 `-R`: the server, in the guest, transmits): the VMM's
        /// transmit path, the guest's TX queue to the tap.
        case guestToHost = "guest-to-host"
        /// The host sends: the VMM's receive path, the tap to the guest's RX queue.
        case hostToGuest = "host-to-guest"

        var arrow: String { self == .guestToHost ? "guest→host" : "host→guest" }
    }

    enum Kind: Equatable {
        /// TCP bulk transfer over `streams` connections (iperf3 `-P`).
        case tcp(streams: Int)
        /// UDP datagrams of `payload` bytes sent as fast as the sender can (`-b 0`): the rate of
        /// small packets, where a VMM's cost per frame shows rather than its copying.
        case udp(payload: Int)
    }

    let direction: Direction
    let kind: Kind

    /// The tests in the order every boot runs them: TCP with 1 and 4 streams, then small UDP
    /// datagrams, each way.
    static func all(udpPayload: Int) -> [NetBenchTest] {
        [.guestToHost, .hostToGuest].flatMap { d in
            [NetBenchTest(direction: d, kind: .tcp(streams: 1)), NetBenchTest(direction: d, kind: .tcp(streams: 4))]
        } + [.guestToHost, .hostToGuest].map { NetBenchTest(direction: $0, kind: .udp(payload: udpPayload)) }
    }

    /// e.g. "tcp-guest-to-host-4", "udp-host-to-guest-64b": names its log file and its metrics' keys.
    var name: String {
        switch kind {
        case .tcp(let streams): "tcp-\(direction.rawValue)-\(streams)"
        case .udp(let payload): "udp-\(direction.rawValue)-\(payload)b"
        }
    }

    /// The iperf3 client's arguments besides the server's address and the duration.
    var iperfArguments: [String] {
        var arguments = direction == .guestToHost ? ["-R"] : []
        switch kind {
        case .tcp(let streams): if streams > 1 { arguments += ["-P", String(streams)] }
        case .udp(let payload): arguments += ["-u", "-l", String(payload), "-b", "0"]
        }
        return arguments
    }

    /// The report's rows for this test: TCP throughput; UDP packets per second received and the
    /// share lost on the way.
    var metrics: [LinuxBenchReport.Metric] {
        switch kind {
        case .tcp(let streams):
            [.init(key: "\(name)-mbit-s", label: "TCP \(direction.arrow), \(streams) stream\(streams == 1 ? "" : "s") (Mbit/s)",
                   higherIsBetter: true, digits: 1)]
        case .udp(let payload):
            [.init(key: "\(name)-pps", label: "UDP \(direction.arrow), \(payload) B, received (packets/s)", higherIsBetter: true, digits: 0),
             .init(key: "\(name)-loss-pct", label: "UDP \(direction.arrow), \(payload) B, lost (%)", higherIsBetter: false, digits: 1,
                   hasRatios: false)]
        }
    }

    /// The figures of `metrics`, from the client's report.
    func figures(_ result: IperfResult) throws(CLIError) -> [Double] {
        switch kind {
        case .tcp: [try result.receivedBitsPerSecond() / 1e6]
        case .udp: [try result.receivedPacketsPerSecond(), try result.lostPercent()]
        }
    }
}
