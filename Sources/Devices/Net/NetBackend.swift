import Glibc
import LinuxSupport

/// Where virtio-net's frames go and come from: a tap, or a test's fake. Frames carry the
/// `virtio_net_hdr` in front; descriptors are non-blocking.
public protocol NetBackend: AnyObject, Sendable {
    /// The descriptor to wait on (edge-triggered readable/writable).
    var fd: Int32 { get }
    /// Reads one frame into `buffer`: its length, 0 when nothing is queued (`EAGAIN`).
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int
    /// Sends one frame gathered from `pieces`. False when the backend cannot take it now
    /// (`EAGAIN`): wait for writable.
    func send(_ pieces: UnsafeBufferPointer<iovec>) throws(SystemError) -> Bool
    /// The header length the driver negotiated (10 or 12).
    func setHeaderSize(_ bytes: Int) throws(SystemError)
    /// The guest offloads the driver enabled (`VirtioNetFeature` guest bits).
    func setGuestOffloads(_ features: UInt64) throws(SystemError)
    /// The MTU to advertise, when the backend knows one.
    var mtu: Int? { get }
    /// Whether this backend queue takes frames (a multi-queue tap's queue of a pair the driver
    /// has not enabled does not).
    func setEnabled(_ enabled: Bool) throws(SystemError)
    /// Whether UDP segmentation offload can pass (the tap's kernel has it).
    var carriesUSO: Bool { get }
}

extension NetBackend {
    public func setEnabled(_ enabled: Bool) throws(SystemError) {}
    public var carriesUSO: Bool { false }
}

extension TapDevice: NetBackend {
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN { return 0 }
            throw .current("read tap \(name)")
        }
    }

    public func send(_ pieces: UnsafeBufferPointer<iovec>) throws(SystemError) -> Bool {
        while true {
            if writev(fd, pieces.baseAddress, Int32(pieces.count)) >= 0 { return true }
            if errno == EINTR { continue }
            if errno == EAGAIN { return false }
            throw .current("write tap \(name)")
        }
    }

    public func setHeaderSize(_ bytes: Int) throws(SystemError) { try setHeaderSize(Int32(bytes)) }

    public func setGuestOffloads(_ features: UInt64) throws(SystemError) {
        try setOffloads(VirtioNetHeader.tapOffloads(guestOffloads: features))
    }

    public var mtu: Int? { interfaceMTU() }

    public func setEnabled(_ enabled: Bool) throws(SystemError) {
        if isMultiQueue { try setQueueAttached(enabled) }
    }

    public var carriesUSO: Bool { supportsUSO }
}
