import Devices
import Glibc
import LinuxSupport

/// Feeds a host descriptor (normally stdin) into the guest's console (the UART or virtio-console),
/// and watches for the escape
/// sequence Ctrl-A x that quits Apus (as in QEMU). Ctrl-A Ctrl-A sends one Ctrl-A to the guest.
///
/// It polls with a short timeout so that it notices the machine stopping; input the console
/// cannot take yet (the UART's FIFO holds 16 bytes) waits here until the guest has read some.
public final class ConsoleInput: Sendable {
    static let escapeKey: UInt8 = 0x01  // Ctrl-A
    static let quitKey = UInt8(ascii: "x")

    private let thread: PosixThread

    /// `deliver` hands bytes to the guest's console and returns how many it took. The thread
    /// confines itself with the device-I/O allow-list (`sandbox`) before it reads anything.
    public init(fd: Int32, control: MachineControl, sandbox: ThreadSandbox? = nil,
                deliver: @escaping @Sendable ([UInt8]) -> Int) throws(SystemError) {
        thread = try PosixThread.start(name: "apus-console") {
            guard sandbox?.confineOrStop(.deviceIO, name: "apus-console", control: control) ?? true else { return }
            var pending: [UInt8] = []
            var sawEscape = false
            var buffer = [UInt8](repeating: 0, count: 256)
            var open = true
            while !control.isStopping {
                if !pending.isEmpty {
                    let n = deliver(pending)
                    pending.removeFirst(n)
                    if !pending.isEmpty { usleep(1000); continue }
                }
                guard open else { usleep(50_000); continue }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 100) > 0 else { continue }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n <= 0 {
                    if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    open = false  // end of input: the guest keeps running without it
                    continue
                }
                for b in buffer[0..<n] {
                    if sawEscape {
                        sawEscape = false
                        if b == Self.quitKey {
                            control.requestStop(.signal(SIGINT))
                            return
                        }
                        pending.append(b)
                    } else if b == Self.escapeKey {
                        sawEscape = true
                    } else {
                        pending.append(b)
                    }
                }
            }
        }
    }

    /// Waits for the input thread to notice the stop (at most one poll period).
    public func join() { thread.join() }
}
