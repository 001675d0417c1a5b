import LinuxSupport

/// The machine's power button: pressing it raises the interrupt of the ACPI Generic Event
/// Device (`Boot.ACPIPowerButton`), through an irqfd, so any thread may press it (the control
/// socket's does) without a KVM ioctl.
public final class PowerButton: Sendable {
    private let interrupt: EventFD

    /// `interrupt` is an irqfd on the GED's GSI.
    public init(interrupt: EventFD) { self.interrupt = interrupt }

    /// One press: an edge on the GED's interrupt line.
    public func press() { interrupt.signal() }
}
