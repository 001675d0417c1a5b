import CKVM
import Glibc

/// The kernel's virtio-net data path (`/dev/vhost-net`): once told where guest RAM is, where a
/// queue's rings are, which eventfd the guest kicks and which one to signal, and which tap to
/// use, the kernel moves frames between the rings and the tap itself — no exit to userspace
/// and no Apus thread on the way (virtio 1.0 talk: "vhost").
///
/// Every call is an ioctl on the vhost descriptor; the wrapper adds only names and errors.
public final class VhostNet: Sendable {
    private let descriptor: SendableFD
    public var fd: Int32 { descriptor.raw }
    /// The virtio features this kernel's vhost-net can carry (ring and header layout).
    public let features: UInt64

    /// Opens `/dev/vhost-net` and makes this process its owner (which starts its worker).
    public init() throws(SystemError) {
        let raw = Glibc.open("/dev/vhost-net", O_RDWR | O_CLOEXEC)
        if raw < 0 {
            let e = errno
            let hint = e == ENOENT ? " (no vhost-net driver: modprobe vhost_net)"
                : e == EACCES || e == EPERM ? " (no permission: join the group that owns /dev/vhost-net, or run as root)" : ""
            throw SystemError("open /dev/vhost-net\(hint)", errno: e)
        }
        descriptor = SendableFD(raw)
        if apus_vhost_set_owner(raw) != 0 { throw .current("VHOST_SET_OWNER") }
        var f: UInt64 = 0
        if apus_vhost_get_features(raw, &f) != 0 { throw .current("VHOST_GET_FEATURES") }
        features = f
    }

    /// The features the driver negotiated that vhost must honour (a subset of `features`).
    public func setFeatures(_ f: UInt64) throws(SystemError) {
        if apus_vhost_set_features(fd, f) != 0 { throw .current("VHOST_SET_FEATURES") }
    }

    /// Guest RAM: (guest-physical start, size, host address) per region.
    public func setMemoryTable(_ regions: [(guest: UInt64, size: UInt64, host: UInt64)]) throws(SystemError) {
        let r = apus_vhost_set_mem_table(fd, UInt32(regions.count), regions.map(\.guest), regions.map(\.size), regions.map(\.host))
        if r != 0 { throw .current("VHOST_SET_MEM_TABLE") }
    }

    /// One ring's layout (host addresses), size and first available index.
    public func setRing(_ index: UInt32, size: UInt16, base: UInt16, descriptors: UInt64, available: UInt64, used: UInt64) throws(SystemError) {
        if apus_vhost_set_vring_num(fd, index, UInt32(size)) != 0 { throw .current("VHOST_SET_VRING_NUM \(index)") }
        if apus_vhost_set_vring_base(fd, index, UInt32(base)) != 0 { throw .current("VHOST_SET_VRING_BASE \(index)") }
        if apus_vhost_set_vring_addr(fd, index, descriptors, available, used) != 0 { throw .current("VHOST_SET_VRING_ADDR \(index)") }
    }

    /// The eventfd the guest's doorbell signals (kick) and the one vhost signals when it has
    /// used buffers (call).
    public func setEvents(_ index: UInt32, kick: Int32, call: Int32) throws(SystemError) {
        if apus_vhost_set_vring_kick(fd, index, kick) != 0 { throw .current("VHOST_SET_VRING_KICK \(index)") }
        if apus_vhost_set_vring_call(fd, index, call) != 0 { throw .current("VHOST_SET_VRING_CALL \(index)") }
    }

    /// Starts ring `index` on `backend` (a tap fd), or stops it (nil): stopping returns only once
    /// the kernel no longer touches the ring.
    public func setBackend(_ index: UInt32, _ backend: Int32?) throws(SystemError) {
        if apus_vhost_net_set_backend(fd, index, backend ?? -1) != 0 { throw .current("VHOST_NET_SET_BACKEND \(index)") }
    }
}
