import CKVM
import Glibc
import Synchronization

/// A Linux tap interface opened through `/dev/net/tun`: Ethernet frames in and out, each
/// preceded by a `virtio_net_hdr` (`IFF_VNET_HDR`), which is what lets checksum and
/// segmentation offloads pass between a virtio-net driver and the host's stack untouched.
///
/// Non-blocking: a read with nothing queued and a write the tap cannot take now both fail with
/// `EAGAIN`, and the owner waits for epoll instead of spinning.
public final class TapDevice: Sendable {
    /// The interface's name as the kernel knows it (`apus0`, or what `tap%d` became).
    public let name: String
    /// The descriptor frames are read from and written to.
    public var fd: Int32 { descriptor.raw }
    /// Opened with `IFF_MULTI_QUEUE`: one of several queues of the same interface.
    public let isMultiQueue: Bool
    /// Whether the kernel's tap takes UDP segmentation offload (`probeUSO`, at open).
    public let supportsUSO: Bool
    private let descriptor: SendableFD

    /// Longest interface name Linux accepts (IFNAMSIZ - 1).
    public static let maxNameLength = 15

    // <linux/if_tun.h> flags (plain constants there: Swift sees them).
    static let tap = Int16(IFF_TAP), noPacketInfo = Int16(IFF_NO_PI), vnetHeader = Int16(IFF_VNET_HDR)
    static let multiQueue = Int16(IFF_MULTI_QUEUE)

    /// Attaches to tap `name`, creating it if it does not exist (creating needs CAP_NET_ADMIN;
    /// attaching to a tap made for you with `ip tuntap add NAME mode tap user $USER` does not).
    public init(name: String, multiQueue: Bool = false) throws(SystemError) {
        guard !name.isEmpty, name.utf8.count <= Self.maxNameLength, !name.contains("/") else {
            throw SystemError("tap name '\(name)': 1 to \(Self.maxNameLength) bytes, no '/'", errno: EINVAL)
        }
        let raw = Glibc.open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if raw < 0 {
            let e = errno
            let hint = e == ENOENT ? " (no tun driver: modprobe tun)"
                : e == EACCES || e == EPERM ? " (no permission: add yourself to the group that owns /dev/net/tun, or run as root)" : ""
            throw SystemError("open /dev/net/tun\(hint)", errno: e)
        }
        let owned = SendableFD(raw)
        var flags = Self.tap | Self.noPacketInfo | Self.vnetHeader
        if multiQueue { flags |= Self.multiQueue }
        var buffer = [CChar](repeating: 0, count: 16)
        for (i, b) in name.utf8.enumerated() { buffer[i] = CChar(bitPattern: b) }
        if apus_tun_set_iff(raw, &buffer, flags) != 0 {
            let e = errno
            let hint = e == EPERM ? " (creating a tap needs CAP_NET_ADMIN; or create it first: ip tuntap add \(name) mode tap user $USER)"
                : e == EINVAL ? " (an existing interface of another kind, or one made with different multi-queue settings?)"
                : e == EBUSY ? " (already attached by another process)" : ""
            throw SystemError("attach tap \(name)\(hint)", errno: e)
        }
        self.name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        isMultiQueue = multiQueue
        supportsUSO = Self.probeUSO(raw)
        descriptor = owned
    }

    /// Sets how long the `virtio_net_hdr` before each frame is: 10 bytes, or 12 with
    /// `num_buffers` (VERSION_1 or MRG_RXBUF). The tap reads and writes that many.
    public func setHeaderSize(_ bytes: Int32) throws(SystemError) {
        var size = bytes
        if apus_ioctl_ptr(fd, apus_tunsetvnethdrsz(), &size) != 0 { throw .current("TUNSETVNETHDRSZ \(name)") }
    }

    /// Offloads the reader (the guest) can take: `TUN_F_*` bits. Frames the host hands the tap
    /// are checksummed and segmented in software for whatever is not listed.
    public func setOffloads(_ flags: UInt32) throws(SystemError) {
        if apus_ioctl_int(fd, apus_tunsetoffload(), UInt(flags)) != 0 { throw .current("TUNSETOFFLOAD \(name)") }
    }

    /// On a multi-queue tap: whether this queue takes frames. The kernel spreads incoming
    /// flows over the attached queues only, so a queue whose virtqueue pair the driver has not
    /// enabled must be detached, or its frames would wait where nobody reads.
    /// Asking for the state the queue is already in is a no-op (the kernel would refuse it
    /// with EINVAL).
    public func setQueueAttached(_ attached: Bool) throws(SystemError) {
        guard queueAttached.exchange(attached, ordering: .acquiringAndReleasing) != attached else { return }
        if apus_tun_set_queue(fd, attached ? 1 : 0) != 0 {
            let error = SystemError.current("TUNSETQUEUE \(name)")
            queueAttached.store(!attached, ordering: .releasing)
            throw error
        }
    }
    /// A queue starts attached (TUNSETIFF attaches it).
    private let queueAttached = Atomic<Bool>(true)

    /// The interface's MTU, or nil when it cannot be read.
    public func interfaceMTU() -> Int? {
        let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard sock >= 0 else { return nil }
        defer { close(sock) }
        let mtu = apus_interface_mtu(sock, name)
        return mtu > 0 ? Int(mtu) : nil
    }

    // TUN_F_* bits for `setOffloads`.
    public static let offloadChecksum = UInt32(TUN_F_CSUM)
    public static let offloadTSO4 = UInt32(TUN_F_TSO4)
    public static let offloadTSO6 = UInt32(TUN_F_TSO6)
    public static let offloadTSOECN = UInt32(TUN_F_TSO_ECN)
    /// UDP segmentation offload, Linux 6.2 and later (values from its <linux/if_tun.h>; older
    /// headers, like this build host's, lack them).
    public static let offloadUSO4: UInt32 = 0x20
    public static let offloadUSO6: UInt32 = 0x40

    /// Whether this kernel's tap takes UDP segmentation offload (TUNSETOFFLOAD refuses flags
    /// it does not know with EINVAL). Probed once, at open, and the offloads left off.
    static func probeUSO(_ fd: Int32) -> Bool {
        let works = apus_ioctl_int(fd, apus_tunsetoffload(), UInt(offloadChecksum | offloadUSO4 | offloadUSO6)) == 0
        _ = apus_ioctl_int(fd, apus_tunsetoffload(), 0)
        return works
    }
}

/// A descriptor closed when the last owner goes away, shareable across threads (the tap is read
/// and written by the device's I/O thread, and closed at the machine's end).
final class SendableFD: Sendable {
    let raw: Int32
    init(_ raw: Int32) { self.raw = raw }
    deinit { close(raw) }
}
