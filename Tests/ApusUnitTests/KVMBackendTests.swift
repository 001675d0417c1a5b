import Glibc
import KVM
import LinuxSupport
import Testing

@Suite struct KVMBackendTests {
    /// `/proc/cpuinfo` reports a size of 0: a reader that trusts `stat` sees nothing (the
    /// nested host, whose CPU has svm, was once called "not hardware-backed" that way).
    @Test func procFilesAreReadToTheEnd() throws {
        let status = String(decoding: try readWholeFile("/proc/self/status"), as: UTF8.self)
        #expect(status.contains("Name:") && status.contains("VmRSS:"))
    }

    @Test func theCPUFlagsDecide() throws {
        let (path, fd) = temporaryImage(size: 0)
        defer { unlink(path); close(fd) }
        func detect(_ cpuinfo: String, module: String = "/nonexistent") -> KVMBackend {
            _ = ftruncate(fd, 0)
            _ = cpuinfo.withCString { pwrite(fd, $0, strlen($0), 0) }
            return KVMBackend.detect(cpuinfo: path, softwareModule: module)
        }
        #expect(detect("processor\t: 0\nflags\t\t: fpu vme svm lm\n") == .hardware("svm"))
        #expect(detect("flags\t\t: fpu vmx sse\n") == .hardware("vmx"))
        #expect(detect("flags\t\t: fpu sse\n") == .unknown)
        #expect(detect("flags\t\t: fpu sse\n", module: "/proc") == .pvm)
        #expect(KVMBackend.hardware("svm").runsLinux && !KVMBackend.pvm.runsLinux)
    }
}
