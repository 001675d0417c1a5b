#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `apus bench net` reads from an iperf3 client's `--json` report (iperf3 3.12, Debian
/// bookworm): the `end` summaries, and `error` when the test failed.
struct IperfResult: Decodable {
    /// One of `end`'s sums. TCP fills bytes and seconds; UDP adds packets and the lost ones.
    struct Sum: Decodable {
        let seconds: Double
        let bytes: Double
        let bitsPerSecond: Double
        let packets: Double?
        let lostPackets: Double?
        let lostPercent: Double?
    }

    struct End: Decodable {
        /// The sender's view and the receiver's (the server's, reported back, when the client
        /// sends; the client's own with `-R`).
        let sumSent: Sum?
        let sumReceived: Sum?
    }

    let end: End?
    let error: String?

    /// Parses a report; a text that is not one becomes an error quoting its start.
    init(json: String) throws(CLIError) {
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            self = try decoder.decode(IperfResult.self, from: Data(json.utf8))
        } catch {
            throw CLIError("iperf3's output is not its JSON report (\(error)): \(json.prefix(200))")
        }
    }

    /// The receiver's side, or the error iperf3 reported.
    private func received() throws(CLIError) -> Sum {
        if let error { throw CLIError("iperf3: \(error)") }
        guard let sum = end?.sumReceived, sum.seconds > 0 else { throw CLIError("iperf3's report has no end.sum_received") }
        return sum
    }

    /// Bits per second that arrived.
    func receivedBitsPerSecond() throws(CLIError) -> Double { try received().bitsPerSecond }

    /// Datagrams per second that arrived: the receiver counts the sequence numbers it saw
    /// (`packets`) and the gaps among them (`lost_packets`).
    func receivedPacketsPerSecond() throws(CLIError) -> Double {
        let sum = try received()
        guard let packets = sum.packets, let lost = sum.lostPackets else { throw CLIError("iperf3's report has no UDP packet counts") }
        return max(0, packets - lost) / sum.seconds
    }

    /// The share of datagrams that did not arrive, in percent.
    func lostPercent() throws(CLIError) -> Double {
        guard let percent = try received().lostPercent else { throw CLIError("iperf3's report has no UDP loss") }
        return percent
    }
}
