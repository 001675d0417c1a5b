import CKVM
import Glibc

/// A failed system call: which operation failed and the `errno` it left.
///
/// Every syscall wrapper in Apus throws this, so a user reads
/// `KVM_CREATE_VM: Cannot allocate memory (errno 12)` rather than a bare number.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was attempted, e.g. `"KVM_RUN"` or `"open /dev/kvm"`.
    public let operation: String
    /// The `errno` value the call left behind.
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Captures the calling thread's current `errno`.
    public static func current(_ operation: String) -> SystemError {
        SystemError(operation, errno: apus_errno())
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Runs a syscall that returns -1 and sets `errno` on failure; returns its result otherwise.
@inline(__always)
public func syscallChecked<T: BinaryInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(SystemError) -> T {
    let result = call()
    if result == -1 { throw SystemError.current(operation()) }
    return result
}
