import GuestMemory

/// A chain of descriptors starting at `head`, walked lazily and validated step by step.
///
/// Walking rules (virtio 1.2 §2.7.5 and §2.7.5.3): every buffer lies in RAM; `next` stays inside
/// its table; the whole chain, indirect entries included, is at most the queue size long (so a
/// loop ends in an error); an INDIRECT descriptor has no NEXT, a length that is a non-zero
/// multiple of 16, and no INDIRECT entries of its own; readable buffers come before writable ones.
public struct DescriptorChain: Sequence, IteratorProtocol {
    /// The head index, to hand back to `SplitQueue.addUsed`.
    public let head: UInt16
    private let queue: SplitQueue
    private var table: GuestAddress
    private var tableCount: UInt32
    private var nextIndex: UInt16?
    private var inIndirect = false
    private var seen = 0
    private var sawWritable = false
    /// The first rule the chain broke, if walking stopped early.
    public private(set) var error: QueueError?

    init(queue: SplitQueue, head: UInt16) throws(QueueError) {
        guard head < queue.size else { throw .headOutOfRange(head) }
        self.head = head
        self.queue = queue
        table = queue.descriptorTable
        tableCount = UInt32(queue.size)
        nextIndex = head
    }

    public mutating func next() -> Descriptor? {
        do {
            return try step()
        } catch {
            self.error = error
            nextIndex = nil
            return nil
        }
    }

    private mutating func step() throws(QueueError) -> Descriptor? {
        while let index = nextIndex {
            seen += 1
            guard seen <= Int(queue.size) else { throw .chainTooLong(limit: Int(queue.size)) }
            let d = try queue.descriptor(table: table, count: tableCount, index: index)
            if d.flags & SplitQueue.flagIndirect != 0 {
                guard !inIndirect else { throw .nestedIndirect }
                guard d.flags & SplitQueue.flagNext == 0 else { throw .indirectWithNext }
                guard d.len > 0, d.len % 16 == 0, d.len / 16 <= UInt32(queue.size),
                      queue.memory.contains(GuestAddress(d.addr), length: UInt64(d.len)) else {
                    throw .invalidIndirectTable(length: d.len)
                }
                // Continue with entry 0 of the indirect table; the pointing descriptor's own
                // WRITE flag means nothing.
                inIndirect = true
                table = GuestAddress(d.addr)
                tableCount = d.len / 16
                nextIndex = 0
                seen -= 1  // the pointer itself is not a buffer
                continue
            }
            nextIndex = d.flags & SplitQueue.flagNext != 0 ? d.next : nil
            let writable = d.flags & SplitQueue.flagWrite != 0
            if writable { sawWritable = true } else if sawWritable { throw .readableAfterWritable }
            guard queue.memory.contains(GuestAddress(d.addr), length: UInt64(d.len)) else {
                throw .bufferOutsideRAM(address: d.addr, length: d.len)
            }
            return Descriptor(address: GuestAddress(d.addr), length: d.len, isWritable: writable)
        }
        return nil
    }

    /// All descriptors, or the first error.
    public mutating func collect() throws(QueueError) -> [Descriptor] {
        var out: [Descriptor] = []
        while let d = next() { out.append(d) }
        if let error { throw error }
        return out
    }
}
