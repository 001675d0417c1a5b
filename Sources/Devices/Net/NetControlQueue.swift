import ByteOrder
import Diagnostics
import GuestMemory
import Virtio

/// virtio-net's control queue (virtio 1.2 §5.1.6.5): each chain is `{u8 class; u8 command;
/// data}` readable, then one writable `ack` byte (0 OK, 1 ERR).
///
/// Supported: the number of queue pairs in use (VIRTIO_NET_F_MQ), the RX mode switches and MAC filter tables (VIRTIO_NET_F_CTRL_RX), recorded and
/// acknowledged — a tap is a point-to-point link, so every frame the host sends is the guest's
/// and there is nothing to filter — and the guest offloads (VIRTIO_NET_F_CTRL_GUEST_OFFLOADS),
/// which change what the tap may hand the guest.
struct NetControlQueue {
    enum Class: UInt8 { case rx = 0, mac = 1, mq = 4, guestOffloads = 5 }

    /// What commands change outside the control queue; each says whether it worked.
    struct Effects {
        var setOffloads: (UInt64) -> Bool
        var enablePairs: (Int) -> Bool = { _ in false }
    }
    static let ok: UInt8 = 0, error: UInt8 = 1
    /// A command is a few bytes; a MAC table of every unicast and multicast address an
    /// interface could hold stays far below this.
    static let maxCommandBytes = 64 * 1024

    /// What the driver asked for, as recorded (for tests and `--stats`).
    private(set) var promiscuous = false
    private(set) var allMulticast = false
    private(set) var macTableEntries = 0
    private(set) var enabledPairs = 1

    /// Serves one command chain; returns the bytes written (the ack byte, or 0 when the chain
    /// has nowhere to put it).
    mutating func serve(_ chain: inout DescriptorChain, memory: GuestMemory, negotiated: UInt64, pairs: Int = 1,
                        effects: Effects, log: DeviceLog) -> UInt32 {
        var command: [UInt8] = []
        var ack: Descriptor?
        var tooLong = false
        while let d = chain.next() {
            if d.isWritable {
                if ack == nil { ack = d }
                continue
            }
            guard command.count + Int(d.length) <= Self.maxCommandBytes else { tooLong = true; continue }
            guard let bytes = try? memory.readBytes(d.address, count: Int(d.length)) else { continue }
            command += bytes
        }
        guard chain.error == nil else { return 0 }
        guard let ack, ack.length >= 1 else {
            log.report("control command without an ack buffer", "chain \(chain.head) ignored")
            return 0
        }
        let status = tooLong ? Self.error : execute(command, negotiated: negotiated, pairs: pairs, effects: effects, log: log)
        guard (try? memory.store(status, at: ack.address)) != nil else { return 0 }
        return 1
    }

    /// Runs one command; its ack.
    mutating func execute(_ bytes: [UInt8], negotiated: UInt64, pairs: Int = 1, effects: Effects, log: DeviceLog) -> UInt8 {
        guard bytes.count >= 2 else { return Self.error }
        let data = bytes[2...]
        switch (Class(rawValue: bytes[0]), bytes[1]) {
        case (.rx, 0...1) where negotiated & VirtioNetFeature.ctrlRx != 0:
            // PROMISC (0) and ALLMULTI (1): one byte, on or off.
            guard data.count == 1 else { return Self.error }
            if bytes[1] == 0 { promiscuous = data.first! != 0 } else { allMulticast = data.first! != 0 }
            return Self.ok
        case (.mac, 0) where negotiated & VirtioNetFeature.ctrlRx != 0:
            // MAC_TABLE_SET: two tables (unicast, multicast), each {le32 entries; u8 macs[entries][6]}.
            guard let entries = Self.macTables(data) else { return Self.error }
            macTableEntries = entries
            return Self.ok
        case (.guestOffloads, 0) where negotiated & VirtioNetFeature.ctrlGuestOffloads != 0:
            guard data.count == 8 else { return Self.error }
            let offloads = Array(data).loadLittleEndian(UInt64.self, at: 0)!
            // Only offloads the driver negotiated may be turned on (§5.1.6.5.6.2).
            guard offloads & ~(negotiated & VirtioNetFeature.guestOffloads) == 0 else { return Self.error }
            return effects.setOffloads(offloads) ? Self.ok : Self.error
        case (.mq, 0) where negotiated & VirtioNetFeature.mq != 0:
            // VQ_PAIRS_SET: le16, 1 to max_virtqueue_pairs (§5.1.6.5.5).
            guard data.count == 2, let n = Array(data).loadLittleEndian(UInt16.self, at: 0), n >= 1, Int(n) <= pairs else {
                return Self.error
            }
            enabledPairs = Int(n)
            return effects.enablePairs(Int(n)) ? Self.ok : Self.error
        default:
            log.report("unsupported control command", "class \(bytes[0]) command \(bytes[1])")
            return Self.error
        }
    }

    /// The number of addresses in a well-formed pair of MAC tables, or nil.
    static func macTables(_ data: ArraySlice<UInt8>) -> Int? {
        var at = data.startIndex
        var total = 0
        for _ in 0..<2 {
            guard data.endIndex - at >= 4 else { return nil }
            let entries = Int(Array(data[at..<at + 4]).loadLittleEndian(UInt32.self, at: 0)!)
            at += 4
            guard entries <= (data.endIndex - at) / 6 else { return nil }
            at += 6 * entries
            total += entries
        }
        return at == data.endIndex ? total : nil
    }
}
