import CKVM
import Glibc

/// A Linux `eventfd`: a 64-bit counter the kernel can signal and a thread can wait on.
///
/// Apus uses eventfds as the two doorbells of the virtio data path: KVM signals an *ioeventfd*
/// when the guest writes a queue-notify address (no exit to userspace), and a device signals an
/// *irqfd* to make KVM inject an interrupt (no ioctl on a vCPU thread).
public final class EventFD: Sendable {
    /// The descriptor number, for registering with KVM or epoll.
    public let fd: Int32

    /// Creates a non-blocking, close-on-exec eventfd with counter `initial`.
    public init(initial: UInt32 = 0) throws(SystemError) {
        let fd = eventfd(initial, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if fd < 0 { throw SystemError.current("eventfd") }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Adds `value` to the counter, waking any waiter.
    public func signal(_ value: UInt64 = 1) {
        var v = value
        // A full counter (EAGAIN) already has a wakeup pending, so dropping is correct.
        _ = write(fd, &v, 8)
    }

    /// Reads and resets the counter; returns 0 when nothing was signalled.
    @discardableResult
    public func drain() -> UInt64 {
        var v: UInt64 = 0
        return read(fd, &v, 8) == 8 ? v : 0
    }
}
