/// How a host descriptor became ready, as a device's I/O thread saw it.
public struct DescriptorReadiness: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// There is something to read (a frame from the tap).
    public static let readable = DescriptorReadiness(rawValue: 1)
    /// A write that failed with `EAGAIN` can be tried again.
    public static let writable = DescriptorReadiness(rawValue: 2)
}

/// Lets a device wait on host descriptors of its own (a tap) on its I/O thread, beside its
/// queues' doorbells, so that both run on one thread and need no lock between them.
public protocol DescriptorWatcher: Sendable {
    /// Watches `fd` edge-triggered: `handler` runs on the device's I/O thread each time `fd`
    /// becomes readable or writable afresh. It must read until `EAGAIN` (or remember that it
    /// stopped short and come back on its own): an edge is reported once.
    func watchEdges(of fd: Int32, _ handler: @escaping @Sendable (DescriptorReadiness) -> Void) throws
}

/// A virtio device that has host descriptors to wait on besides its queues (virtio-net's tap),
/// or more than one I/O thread (virtio-net's queue pairs).
public protocol VirtioHostIO: VirtioDevice {
    /// Queue indexes per I/O thread: the machine starts one thread per group, which waits on
    /// that group's doorbells. Queues in no group go to the first.
    var queueGroups: [[Int]] { get }
    /// Called once, when the machine gives the device its threads: `watchers[i]` is group i's.
    func attach(to watchers: [any DescriptorWatcher]) throws
}

/// A device some of whose queues the host kernel serves (virtio-net with vhost): the machine
/// does not watch those queues' doorbells — the kernel must be their only reader — but hands
/// their eventfds to the device, which passes them on at activation.
public protocol VirtioKernelQueues: VirtioDevice {
    /// The queues the kernel serves.
    var kernelQueues: [Int] { get }
    /// Each kernel queue's doorbell eventfd (owned by the machine, open as long as it is).
    func attachDoorbells(_ fds: [Int: Int32])
}
