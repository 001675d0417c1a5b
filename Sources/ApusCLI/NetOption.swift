import ArgumentParser
import LinuxSupport
import Machine

/// `--net tap=NAME[,mac=MAC][,vhost=on|off][,queues=N]`, parsed with a message that names the
/// bad part.
enum NetOption {
    static func parse(_ argument: String) throws -> NetSpec {
        var tap: String?, mac: [UInt8]?, vhost = false, queues = 1
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("--net \(argument): '\(part)' is not KEY=VALUE") }
            switch (kv[0], kv[1]) {
            case ("tap", let name):
                guard !name.isEmpty, name.utf8.count <= TapDevice.maxNameLength, !name.contains("/") else {
                    throw ValidationError("--net tap=\(name): a tap name is 1 to \(TapDevice.maxNameLength) bytes, without '/'")
                }
                tap = name
            case ("mac", let text):
                guard let bytes = parseMAC(text) else {
                    throw ValidationError("--net mac=\(text): not a MAC address (six hex bytes, e.g. 52:54:00:12:34:56)")
                }
                guard bytes[0] & 1 == 0 else { throw ValidationError("--net mac=\(text): a multicast address cannot be a NIC's") }
                mac = bytes
            case ("vhost", "on"): vhost = true
            case ("vhost", "off"): vhost = false
            case ("queues", let n):
                guard let count = Int(n), (1...16).contains(count) else { throw ValidationError("--net queues=\(n): 1 to 16") }
                queues = count
            default: throw ValidationError("--net \(argument): unknown '\(part)' (tap=NAME, mac=MAC, vhost=on|off, queues=N)")
            }
        }
        guard let tap else { throw ValidationError("--net \(argument): which tap? (tap=NAME)") }
        return NetSpec(tap: tap, mac: mac, vhost: vhost, queues: queues)
    }

    /// Six hex bytes separated by ':' or '-'.
    static func parseMAC(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).count == 6
            ? text.split(separator: ":", omittingEmptySubsequences: false)
            : text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            bytes.append(b)
        }
        return bytes
    }
}
