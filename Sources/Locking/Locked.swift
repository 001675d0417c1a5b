import CSanitizers
import Synchronization

/// A `Mutex` that ThreadSanitizer can see: use it instead of `Synchronization.Mutex` for state
/// that more than one thread touches.
///
/// `Mutex`'s uncontended path is inlined into our code and instrumented, but a contended lock or
/// unlock waits on a futex in `_lockSlow`/`_unlockSlow`, inside the standard library, which is
/// not built with TSan: TSan then misses that one thread's unlock happened before the next
/// thread's lock, and state guarded by the `Mutex` and touched by two threads (the UART between
/// the console thread and a vCPU, a transport's registers between a vCPU and a device's I/O
/// thread) is reported as a race now and then although it is locked. `Locked` tells TSan
/// itself: an acquire just after taking the lock, a release just before dropping it, keyed on an
/// object of this lock's own.
///
/// Outside a TSan build the key is nil and `withLock` is `Mutex.withLock` plus one branch on it:
/// nothing on a vCPU's exit path that was not there before (see CSanitizers for why a weak
/// symbol decides, not a compile condition).
public struct Locked<Value: ~Copyable>: ~Copyable {
    @usableFromInline let mutex: Mutex<Value>
    /// What TSan's happens-before edges hang on: a heap object of this lock's own, whose address
    /// is unique while the lock lives (TSan forgets the edges when it is freed). nil when the
    /// TSan runtime is not in the process.
    @usableFromInline let key: SyncKey?

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
        key = apus_tsan_active() != 0 ? SyncKey() : nil
    }

    /// Runs `body` with the value, the lock held: `Mutex.withLock`, seen by TSan.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            if let key { apus_tsan_acquire(key.address) }
            defer { if let key { apus_tsan_release(key.address) } }
            return try body(&value)
        }
    }
}

extension Locked: @unchecked Sendable where Value: ~Copyable {}

/// The address `Locked` names itself by to TSan.
@usableFromInline
final class SyncKey: Sendable {
    @usableFromInline init() {}

    @usableFromInline var address: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}
