import Devices
import Glibc
import LinuxSupport
import Locking
import Machine
import Testing
import Virtio

/// The seccomp allow-lists against real guests on KVM: virtio guests still complete with every
/// thread confined, each thread `run` starts carries exactly one filter (and the caller none),
/// and a forbidden call from any kind of thread ends `apus` with a line naming the call.
/// (Every other KVM test runs its machine with seccomp on too: see `KVMTestSupport.run`.)
@Suite(.serialized) struct SeccompTests {
    /// A fresh 64-sector image, removed when the returned closure is called.
    static func scratchImage() throws -> (path: String, remove: () -> Void) {
        var template = Array("/tmp/apus-disk-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        _ = ftruncate(fd, 64 * 512)
        close(fd)
        return (path, { unlink(path) })
    }

    @Test(arguments: [VirtioTransport.mmio, .pci])
    func aBareVirtioDriverCompletesWithEveryThreadConfined(_ transport: VirtioTransport) throws {
        let image = try Self.scratchImage()
        defer { image.remove() }
        let guest = transport == .mmio ? "virtio-blk" : "virtio-pci"
        guard let run = try KVMTestSupport.run(guest, seccomp: true, prepare: { machine, _ in
            let disk = VirtioBlock(name: "vda", backend: try FileBlockBackend(path: image.path, readOnly: false), serial: "sc")
            if transport == .mmio {
                try machine.addVirtioMMIO(disk)
                try machine.addVirtioMMIO(VirtioEntropy())
            } else {
                try machine.addVirtioPCI(disk, options: .init(notifyByPortIO: true))
                try machine.addVirtioPCI(VirtioEntropy(), options: .init())
            }
        }) else { return }
        #expect(run.reason == .debugExit(0), "the guest driver failed at step \(run.reason.exitStatus)")
    }

    /// Reads `/proc/self/task/TID/FILE`.
    static func taskFile(_ tid: String, _ file: String) -> String {
        (try? readWholeFile("/proc/self/task/\(tid)/\(file)")).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// `Seccomp:` and `Seccomp_filters:` of a task's status file: "2/1" is filter mode with
    /// one filter.
    static func seccompState(_ tid: String) -> String { seccompState(status: taskFile(tid, "status")) }

    static func seccompState(status: String) -> String {
        let fields = status.split(separator: "\n").filter { $0.hasPrefix("Seccomp") }
        let values = fields.map { $0.split(separator: "\t").last.map(String.init) ?? "?" }
        return values.joined(separator: "/")
    }

    @Test func eachThreadTheMachineStartsCarriesOneFilterAndTheCallerNone() throws {
        let image = try Self.scratchImage()
        defer { image.remove() }
        let seen = Locked<[String: String]>([:])
        let observer = Locked<PosixThread?>(nil)
        // Joined whatever the run did: a thread never joined leaks (TSan reports it).
        defer { observer.withLock { $0 }?.join() }
        guard let run = try KVMTestSupport.run("spin", seccomp: true, prepare: { machine, _ in
            // Names no other test uses: parallel suites run machines in this process too.
            try machine.addVirtioMMIO(VirtioBlock(name: "scblk", backend: try FileBlockBackend(path: image.path, readOnly: false), serial: "sc"))
            try machine.addVirtioMMIO(VirtioEntropy(name: "scrng"))
            let vcpuFD = machine.vcpus[0].fd
            let control = machine.control
            // Once the threads run, find them: the I/O threads by name, the vCPU thread by the
            // call it sits in (ioctl 16 on its descriptor: KVM_RUN, since spin never exits).
            let thread = try PosixThread.start(name: "sc-observer") {
                let deadline = MonotonicClock.now() + 20
                while MonotonicClock.now() < deadline {
                    var found: [String: String] = [:]
                    if let dir = opendir("/proc/self/task") {
                        while let entry = readdir(dir) {
                            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                            guard tid.first?.isNumber == true else { continue }
                            let name = Self.taskFile(tid, "comm").split(separator: "\n").first.map(String.init) ?? ""
                            let call = Self.taskFile(tid, "syscall").split(separator: " ")
                            if name == "io-scblk" || name == "io-scrng" {
                                found[name] = Self.seccompState(tid)
                            } else if call.count > 2, call[0] == "16", call[1] == "0x\(String(vcpuFD, radix: 16))", call[2] == "0xae80" {
                                found["vcpu"] = Self.seccompState(tid)
                            }
                        }
                        closedir(dir)
                    }
                    // A thread is seen the moment it exists, maybe before it confined itself:
                    // wait until none is unconfined (or the deadline, and the check fails).
                    if found.count == 3 {
                        seen.withLock { $0 = found }
                        if !found.values.contains("0/0") { break }
                    }
                    usleep(20_000)
                }
                control.requestStop(.signal(SIGTERM))
            }
            observer.withLock { $0 = thread }
        }) else { return }
        #expect(run.reason == .signal(SIGTERM))
        #expect(seen.withLock { $0 } == ["vcpu": "2/1", "io-scblk": "2/1", "io-scrng": "2/1"],
                "each confined once, by its own filter (none inherited from another)")
        let mine = (try? readWholeFile("/proc/thread-self/status")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(Self.seccompState(status: mine) == "0/0", "run(confiningCaller: false) leaves the caller alone")
    }

    @Test(arguments: ThreadKind.allCases)
    func aForbiddenCallEndsApusWithItsNameAndThread(_ kind: ThreadKind) throws {
        guard KVMTestSupport.kvmAvailable(), let apus = ApusProcess.executable() else { return }
        let guest = "\(KVMTestSupport.repositoryRoot)/guest/build/bare/hello.bin"
        // A control thread exists only with --control.
        let socket = "/tmp/apus-seccomp-probe-\(getpid()).sock"
        defer { unlink(socket) }
        let control = kind == .control ? ["--control", socket] : []
        let child = try ApusProcess.Child(apus, ["run", "--bare", guest, "--seccomp-probe", kind.rawValue] + control)
        let outcome = child.wait()
        // The signal watcher shares the main thread's list; whichever is confined first calls.
        let threads = ["vcpu": ["apus-vcpu0"], "io": ["apus-io"], "main": ["main", "apus-signals"],
                       "control": ["apus-control"]][kind.rawValue]!
        #expect(outcome.status == 128 + SIGSYS, "\(outcome.standardError)")
        #expect(threads.contains { outcome.standardError.contains("apus: seccomp: forbidden system call socket (41) in thread \($0) (\(kind.rawValue) filter)") },
                "\(outcome.standardError)")
    }

    @Test func seccompOffRunsTheSameGuestWithoutFilters() throws {
        guard KVMTestSupport.kvmAvailable(), let apus = ApusProcess.executable() else { return }
        let guest = "\(KVMTestSupport.repositoryRoot)/guest/build/bare/hello.bin"
        let outcome = try ApusProcess.Child(apus, ["run", "--bare", guest, "--seccomp", "off"]).wait()
        #expect(outcome.status == 0, "\(outcome.standardError)")
    }
}
