import CKVM
import Devices
import Glibc
import LinuxSupport
import Testing

/// Apus and Debian's QEMU must refuse to share a disk image the way two QEMUs do: QEMU locks
/// images with open-file-description locks on bytes 100+ and 200+ (block/file-posix.c), which
/// the `flock` Apus once took never met.
@Suite(.serialized) struct ImageLockTests {
    static let qemu = "/usr/bin/qemu-system-x86_64"

    /// Whether QEMU is here; without it the tests say so, and fail where APUS_REQUIRE_KVM=1
    /// (CI, where scripts/install-deps.sh installs it).
    func qemuAvailable() -> Bool {
        if access(Self.qemu, X_OK) == 0 { return true }
        if let required = getenv("APUS_REQUIRE_KVM"), String(cString: required) == "1" {
            Issue.record("\(Self.qemu) is missing (scripts/install-deps.sh installs qemu-system-x86)")
        } else {
            print("SKIPPED (no QEMU): \(Self.qemu) is missing")
        }
        return false
    }

    /// QEMU with the image as a virtio disk, paused before the guest starts: it opens and locks
    /// the image at once and holds it until killed.
    func startQEMU(_ image: String, readOnly: Bool, log: String) throws -> ChildProcess {
        try ChildProcess(Self.qemu, ["-machine", "q35", "-accel", "tcg", "-display", "none", "-nodefaults", "-S",
                                     "-monitor", "none", "-serial", "none",
                                     "-drive", "file=\(image),format=raw,if=virtio,readonly=\(readOnly ? "on" : "off")"],
                         standardError: log)
    }

    /// Waits until someone holds QEMU's "consistent read" lock byte on `image`.
    /// Waits until QEMU holds its lock on `byte` (100: consistent read; 101: write — QEMU
    /// takes its permission locks one after another, so a test must wait for the one it needs).
    func waitForLock(on image: String, byte: Int = 100) -> Bool {
        let fd = open(image, O_RDONLY)
        defer { close(fd) }
        let deadline = MonotonicClock.now() + 20
        while MonotonicClock.now() < deadline {
            if apus_ofd_conflict(fd, Int16(F_WRLCK), byte, 1) == 1 { return true }
            usleep(50_000)
        }
        return false
    }

    @Test func apusRefusesAnImageQEMUHasOpen() throws {
        guard qemuAvailable() else { return }
        let (path, fd) = temporaryImage(size: 1 << 20)
        defer { unlink(path); close(fd); unlink(path + ".qemu.log") }
        for qemuReadOnly in [false, true] {
            let qemu = try startQEMU(path, readOnly: qemuReadOnly, log: path + ".qemu.log")
            defer { _ = try? qemu.terminate() }
            #expect(waitForLock(on: path, byte: qemuReadOnly ? 100 : 101), "QEMU never locked the image")
            // A writer never shares; a reader refuses an image QEMU may write.
            #expect(throws: SystemError.self) { try FileBlockBackend(path: path, readOnly: false) }
            if qemuReadOnly {
                #expect(try FileBlockBackend(path: path, readOnly: true).size == 1 << 20)
            } else {
                #expect(throws: SystemError.self) { try FileBlockBackend(path: path, readOnly: true) }
            }
        }
    }

    @Test func qemuRefusesAnImageApusHasOpen() throws {
        guard qemuAvailable() else { return }
        let (path, fd) = temporaryImage(size: 1 << 20)
        let log = path + ".qemu.log"
        defer { unlink(path); close(fd); unlink(log) }
        for apusReadOnly in [false, true] {
            let disk = try FileBlockBackend(path: path, readOnly: apusReadOnly)
            let qemu = try startQEMU(path, readOnly: false, log: log)
            let status = try qemu.waitForExit(before: MonotonicClock.now() + 20)
            let message = String(decoding: (try? readWholeFile(log)) ?? [], as: UTF8.self)
            #expect(status != 0 && status != 137 && message.contains("lock"),
                    "apus \(apusReadOnly ? "reading" : "writing") the image, QEMU exited \(status): \(message)")
            _ = disk
        }
    }
}
