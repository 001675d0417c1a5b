import LinuxSupport
import Virtio

/// virtio-net feature bits (virtio 1.2 §5.1.3). "Guest" offloads are what the driver can
/// receive (the tap may hand it unchecksummed or unsegmented frames); "host" offloads are what
/// it may send (the tap takes them as they are).
public enum VirtioNetFeature {
    public static let csum: UInt64 = 1 << 0
    public static let guestCsum: UInt64 = 1 << 1
    public static let ctrlGuestOffloads: UInt64 = 1 << 2
    public static let mtu: UInt64 = 1 << 3
    public static let mac: UInt64 = 1 << 5
    public static let guestTSO4: UInt64 = 1 << 7
    public static let guestTSO6: UInt64 = 1 << 8
    public static let guestECN: UInt64 = 1 << 9
    public static let hostTSO4: UInt64 = 1 << 11
    public static let hostTSO6: UInt64 = 1 << 12
    public static let hostECN: UInt64 = 1 << 13
    public static let mrgRxbuf: UInt64 = 1 << 15
    public static let status: UInt64 = 1 << 16
    public static let ctrlVQ: UInt64 = 1 << 17
    public static let ctrlRx: UInt64 = 1 << 18
    /// Several queue pairs (offered only with `queues=N`, N > 1).
    public static let mq: UInt64 = 1 << 22
    /// UDP segmentation offload (virtio 1.2 §5.1.3), offered only where the tap can carry it.
    public static let guestUSO4: UInt64 = 1 << 54
    public static let guestUSO6: UInt64 = 1 << 55
    public static let hostUSO: UInt64 = 1 << 56
    public static let uso: UInt64 = guestUSO4 | guestUSO6 | hostUSO

    /// What Apus offers over a tap: every offload the tap can carry both ways, mergeable
    /// receive buffers, the link status, the MTU, and a control queue for offloads and RX modes.
    public static let offered: UInt64 = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx
        | csum | guestCsum | ctrlGuestOffloads | mtu | mac | guestTSO4 | guestTSO6 | guestECN
        | hostTSO4 | hostTSO6 | hostECN | mrgRxbuf | status | ctrlVQ | ctrlRx

    /// The guest offloads (the bits `VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET` may carry).
    public static let guestOffloads: UInt64 = guestCsum | guestTSO4 | guestTSO6 | guestECN | guestUSO4 | guestUSO6
}

/// The `virtio_net_hdr` that precedes every frame on both queues, and on the tap.
public enum VirtioNetHeader {
    /// 12 bytes (with `num_buffers`) for a VERSION_1 or MRG_RXBUF driver, 10 for a legacy one
    /// without mergeable buffers (virtio 1.2 §5.1.6, and the legacy note there).
    public static func size(features: UInt64) -> Int {
        features & (VirtioFeature.version1 | VirtioNetFeature.mrgRxbuf) != 0 ? 12 : 10
    }
    /// Where `num_buffers` sits in a 12-byte header.
    static let numBuffersOffset = 10

    /// The tap offload flags (`TUN_F_*`) for guest offload bits: what frames the tap may hand
    /// the driver. Segmentation offloads need checksum offload (the kernel refuses them alone),
    /// and ECN only means something with TSO.
    public static func tapOffloads(guestOffloads f: UInt64) -> UInt32 {
        guard f & VirtioNetFeature.guestCsum != 0 else { return 0 }
        var flags = TapDevice.offloadChecksum
        if f & VirtioNetFeature.guestTSO4 != 0 { flags |= TapDevice.offloadTSO4 }
        if f & VirtioNetFeature.guestTSO6 != 0 { flags |= TapDevice.offloadTSO6 }
        if f & VirtioNetFeature.guestECN != 0, flags & (TapDevice.offloadTSO4 | TapDevice.offloadTSO6) != 0 {
            flags |= TapDevice.offloadTSOECN
        }
        if f & VirtioNetFeature.guestUSO4 != 0 { flags |= TapDevice.offloadUSO4 }
        if f & VirtioNetFeature.guestUSO6 != 0 { flags |= TapDevice.offloadUSO6 }
        return flags
    }
}
