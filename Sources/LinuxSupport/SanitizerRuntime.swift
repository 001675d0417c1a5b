import CSanitizers

/// The sanitizer runtime linked into this process, if any (`make tsan` builds the tests and
/// apus with ThreadSanitizer; `make fuzz` with AddressSanitizer). A normal build has none, and
/// everything here is then a no-op or false.
public enum SanitizerRuntime {
    /// Whether ThreadSanitizer's runtime is in the process.
    public static var threadSanitizer: Bool { apus_tsan_active() != 0 }

    /// Lets the runtime prepare for seccomp, once per process, before the first filter: TSan
    /// stops its background thread, which no filter would confine.
    static func prepareForSandbox() { apus_sanitizers_before_sandbox() }
}
