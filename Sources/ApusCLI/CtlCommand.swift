import ArgumentParser
import Glibc
import JSON
import LinuxSupport

/// `apus ctl`: one request to a running apus's control socket, its reply printed.
public struct CtlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Control a running apus through its control socket (apus run --control PATH).",
        discussion: """
        Commands:
          stats            run state, exits by kind, per vCPU and per device, device events (live)
          pause            park every vCPU out of KVM_RUN (devices finish what they started)
          resume           let a paused machine run again
          shutdown         press the ACPI power button: the guest powers off cleanly and apus \
        exits 0 (needs ACPI, and a guest that acts on the button: systemd-logind, acpid, or the \
        demo guest's /init)
          balloon SIZE     set the memory balloon's target (e.g. 128M; 0 deflates it fully)
          balloon-stats    the balloon's sizes and the guest's memory statistics

        The reply is printed as lines of "name: value"; --json prints the raw reply. Exit status: \
        0 for an ok reply, 1 for an error reply or when the socket cannot be reached.

        The socket speaks newline-delimited JSON, one object per line: {"command":"stats"} is \
        answered with {"ok":true,...} or {"ok":false,"error":"..."} (README: "Control socket").

        Examples:
          apus run --kernel vmlinuz --initrd initrd.img --control /tmp/apus.sock &
          apus ctl /tmp/apus.sock stats
          apus ctl /tmp/apus.sock pause
          apus ctl /tmp/apus.sock resume
          apus ctl /tmp/apus.sock balloon 128M
          apus ctl /tmp/apus.sock stats --json
          apus ctl /tmp/apus.sock shutdown
        """)

    @Argument(help: ArgumentHelp("The control socket of a running apus (its --control PATH).", valueName: "socket"))
    public var socket: String

    @Argument(help: ArgumentHelp("stats, pause, resume, shutdown, balloon or balloon-stats.", valueName: "command"))
    public var command: String

    @Argument(help: ArgumentHelp("The command's argument: SIZE for balloon.", valueName: "argument"))
    public var arguments: [String] = []

    @Flag(name: .long, help: "Print the raw JSON reply.")
    public var json = false

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the reply.", valueName: "seconds"))
    public var timeout: Int = 30

    public init() {}

    public func validate() throws {
        _ = try request()
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    /// The request line this invocation sends.
    func request() throws -> JSONValue {
        switch (command, arguments.count) {
        case ("stats", 0), ("pause", 0), ("resume", 0), ("shutdown", 0), ("balloon-stats", 0):
            return .object(["command": .string(command)])
        case ("balloon", 1):
            let text = arguments[0]
            let bytes: UInt64
            if text.trimmingSpaces() == "0" {
                bytes = 0
            } else {
                do { bytes = try parseSize(text) } catch { throw ValidationError("balloon: \(error)") }
            }
            return .object(["command": .string("balloon"), "bytes": .integer(bytes)])
        case ("balloon", _):
            throw ValidationError("balloon takes one SIZE, e.g. 'apus ctl SOCKET balloon 128M'")
        case ("stats", _), ("pause", _), ("resume", _), ("shutdown", _), ("balloon-stats", _):
            throw ValidationError("\(command) takes no argument")
        default:
            throw ValidationError("unknown command '\(command)': use stats, pause, resume, shutdown, balloon SIZE or balloon-stats")
        }
    }

    public func run() throws {
        let reply = try ControlClient.exchange(socket: socket, request: try request(), timeoutSeconds: timeout)
        if json {
            print(reply.serialized)
        } else if reply["ok"]?.bool == true {
            print(ControlReplyText.render(reply), terminator: "")
        }
        guard reply["ok"]?.bool == true else {
            if json { throw ExitCode(1) }
            throw CLIError("ctl: \(reply["error"]?.string ?? "the reply has neither ok:true nor an error")")
        }
    }
}

/// The client side of the control protocol: connect, send one line, read one line.
enum ControlClient {
    /// A reply is a line of at most this many bytes.
    static let maxReplyBytes = 1 << 20

    static func exchange(socket: String, request: JSONValue, timeoutSeconds: Int) throws -> JSONValue {
        let fd: Int32
        do {
            fd = try UnixSocket.connect(socket)
        } catch {
            throw CLIError("ctl: cannot reach \(socket): \(error) (is apus running with --control \(socket)?)")
        }
        defer { close(fd) }
        let line = Array((request.serialized + "\n").utf8)
        var sent = 0
        while sent < line.count {
            // MSG_NOSIGNAL: an apus that went away is an error line, not a SIGPIPE.
            let n = line[sent...].withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("ctl: sending to \(socket): \(SystemError.current("send"))")
            }
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = MonotonicClock.now() + Double(timeoutSeconds)
        while !reply.contains(0x0A) {
            let left = deadline - MonotonicClock.now()
            guard left > 0 else { throw CLIError("ctl: no reply from \(socket) within \(timeoutSeconds) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left * 1000, 1000)))
            if ready < 0 && errno != EINTR { throw CLIError("ctl: \(SystemError.current("poll"))") }
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("ctl: reading from \(socket): \(SystemError.current("read"))")
            }
            guard n > 0 else { throw CLIError("ctl: \(socket) closed the connection without a reply") }
            reply += buffer[0..<n]
            guard reply.count <= maxReplyBytes else { throw CLIError("ctl: the reply is longer than \(maxReplyBytes) bytes") }
        }
        let text = reply[..<reply.firstIndex(of: 0x0A)!]
        do {
            return try JSONParser(limits: .init(maxBytes: maxReplyBytes)).parse(text)
        } catch {
            throw CLIError("ctl: the reply is not JSON: \(error)")
        }
    }
}

/// A reply as lines a person reads: `name: value`, nested objects indented, arrays of
/// numbers on one line, arrays of objects one per line.
enum ControlReplyText {
    static func render(_ reply: JSONValue) -> String {
        var out = ""
        for (key, value) in reply.members ?? [] where key != "ok" {
            line(key, value, indent: "", into: &out)
        }
        return out
    }

    private static func line(_ key: String, _ value: JSONValue, indent: String, into out: inout String) {
        switch value {
        case let .object(members):
            out += "\(indent)\(key):\n"
            for (k, v) in members { line(k, v, indent: indent + "  ", into: &out) }
        case let .array(elements) where elements.contains(where: { $0.members != nil }):
            out += "\(indent)\(key):\(elements.isEmpty ? " none" : "")\n"
            for e in elements { out += "\(indent)  \(inline(e))\n" }
        default:
            out += "\(indent)\(key): \(inline(value))\n"
        }
    }

    private static func inline(_ value: JSONValue) -> String {
        switch value {
        case .null: "none"
        case let .bool(b): b ? "yes" : "no"
        case let .number(n): n.text
        case let .string(s): s
        case let .array(elements): elements.isEmpty ? "none" : elements.map(inline).joined(separator: ", ")
        case let .object(members): members.map { "\($0.0)=\(inline($0.1))" }.joined(separator: " ")
        }
    }
}
