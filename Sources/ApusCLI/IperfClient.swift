import LinuxSupport

/// The host's iperf3 client, pointed at the guest's server: runs one test and returns its report.
struct IperfClient {
    /// The iperf3 executable (a bare name is looked up in PATH).
    let binary: String
    /// The guest's address (its server listens on iperf3's default port, 5201).
    let server: String
    /// Seconds each test transmits.
    let seconds: Int

    /// Seconds a test may take beyond its transmitting time (connecting, exchanging results)
    /// before it is stopped: generous, the nested host's emulation is slow.
    static let slack = 60.0

    /// Runs `test`; iperf3's stderr goes to `errorLog`. Throws when iperf3 fails, overruns, or
    /// reports no usable result.
    func run(_ test: NetBenchTest, errorLog: String) throws(CLIError) -> IperfResult {
        let arguments = ["-c", server, "-t", String(seconds), "--json", "--connect-timeout", "10000"] + test.iperfArguments
        func described(_ error: CLIError) -> CLIError {
            CLIError("\(test.name): \(error)\n  command: \(([binary] + arguments).joined(separator: " "))\n  its stderr: \(errorLog)")
        }
        let child: ChildProcess
        do { child = try ChildProcess(binary, arguments, standardError: errorLog) } catch {
            throw described(CLIError("cannot start \(binary): \(error)"))
        }
        let deadline = child.startTime + Double(seconds) + Self.slack
        var lines: [String] = []
        let status: Int32
        do {
            while let line = try child.nextLine(before: deadline) { lines.append(line.text) }
            guard child.outputEnded else {
                _ = try child.terminate()
                throw described(CLIError("iperf3 did not finish within \(seconds + Int(Self.slack)) s"))
            }
            status = try child.waitForExit(before: deadline + 5)
        } catch let error as SystemError {
            throw described(CLIError("watching iperf3: \(error)"))
        } catch let error as CLIError {
            throw error
        } catch {
            throw described(CLIError("\(error)"))
        }
        // iperf3 prints its JSON report, with "error" set, on most failures too: prefer its words.
        let result: IperfResult
        do { result = try IperfResult(json: lines.joined(separator: "\n")) } catch {
            throw described(status == 0 ? error : CLIError("iperf3 exited with status \(status)"))
        }
        if let error = result.error { throw described(CLIError("iperf3: \(error)")) }
        guard status == 0 else { throw described(CLIError("iperf3 exited with status \(status)")) }
        return result
    }
}
