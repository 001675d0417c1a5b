import CKVM
import KVM
import Testing

/// Decodes synthetic `kvm_run` buffers, the way KVM would leave them.
@Suite struct VCPUExitTests {
    /// A zeroed two-page buffer (kvm_run, then the PIO data page).
    final class RunBuffer {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 4096)
        init() { raw.initializeMemory(as: UInt8.self, repeating: 0, count: 8192) }
        deinit { raw.deallocate() }
        var run: UnsafeMutablePointer<kvm_run> { raw.assumingMemoryBound(to: kvm_run.self) }
    }

    @Test func portOutputWithRepCount() {
        let b = RunBuffer()
        b.run.pointee.exit_reason = UInt32(KVM_EXIT_IO)
        b.run.pointee.io.direction = UInt8(KVM_EXIT_IO_OUT)
        b.run.pointee.io.size = 2
        b.run.pointee.io.port = 0x1F0
        b.run.pointee.io.count = 3
        b.run.pointee.io.data_offset = 4096
        (b.raw + 4096).storeBytes(of: 0xBEEF, as: UInt16.self)
        guard case let .io(io) = VCPUExit.decode(b.run) else { Issue.record("not decoded as I/O"); return }
        #expect(io.port == 0x1F0 && io.size == 2 && io.count == 3 && io.isWrite)
        #expect(io.data == b.raw + 4096)
        #expect(io.value == 0xBEEF)
    }

    @Test func portInput() {
        let b = RunBuffer()
        b.run.pointee.exit_reason = UInt32(KVM_EXIT_IO)
        b.run.pointee.io.direction = UInt8(KVM_EXIT_IO_IN)
        b.run.pointee.io.size = 1
        b.run.pointee.io.port = 0x3FD
        b.run.pointee.io.count = 1
        b.run.pointee.io.data_offset = 4096
        guard case let .io(io) = VCPUExit.decode(b.run) else { Issue.record("not decoded as I/O"); return }
        #expect(!io.isWrite && io.port == 0x3FD)
    }

    @Test func mmioWriteAndReadPointIntoKVMRun() {
        let b = RunBuffer()
        b.run.pointee.exit_reason = UInt32(KVM_EXIT_MMIO)
        b.run.pointee.mmio.phys_addr = 0xD000_0000
        b.run.pointee.mmio.len = 4
        b.run.pointee.mmio.is_write = 1
        apus_run_mmio_data(b.run).withMemoryRebound(to: UInt32.self, capacity: 1) { $0.pointee = 0x1234_5678 }
        guard case let .mmio(m) = VCPUExit.decode(b.run) else { Issue.record("not decoded as MMIO"); return }
        #expect(m.address == 0xD000_0000 && m.length == 4 && m.isWrite && m.value == 0x1234_5678)
        // A device answering a read writes through `data` into kvm_run itself.
        b.run.pointee.mmio.is_write = 0
        guard case let .mmio(r) = VCPUExit.decode(b.run) else { return }
        r.data.storeBytes(of: UInt32(0xCAFE), as: UInt32.self)
        #expect(UnsafeRawPointer(apus_run_mmio_data(b.run)).load(as: UInt32.self) == 0xCAFE)
    }

    @Test func oversizedMMIOLengthIsClamped() {
        let b = RunBuffer()
        b.run.pointee.exit_reason = UInt32(KVM_EXIT_MMIO)
        b.run.pointee.mmio.len = 64
        guard case let .mmio(m) = VCPUExit.decode(b.run) else { Issue.record("not MMIO"); return }
        #expect(m.length == 8)
    }

    @Test func fatalExits() {
        let b = RunBuffer()
        b.run.pointee.exit_reason = UInt32(KVM_EXIT_SHUTDOWN)
        guard case .shutdown = VCPUExit.decode(b.run) else { Issue.record("shutdown"); return }

        b.run.pointee.exit_reason = UInt32(KVM_EXIT_FAIL_ENTRY)
        b.run.pointee.fail_entry.hardware_entry_failure_reason = 0x21
        b.run.pointee.fail_entry.cpu = 1
        guard case .failEntry(reason: 0x21, cpu: 1) = VCPUExit.decode(b.run) else { Issue.record("fail entry"); return }

        b.run.pointee.exit_reason = UInt32(KVM_EXIT_INTERNAL_ERROR)
        b.run.pointee.internal.suberror = 1
        b.run.pointee.internal.ndata = 2
        b.run.pointee.internal.data.0 = 0x0F0B
        b.run.pointee.internal.data.1 = 7
        guard case let .internalError(e) = VCPUExit.decode(b.run) else { Issue.record("internal"); return }
        #expect(e.suberror == 1 && e.data == [0x0F0B, 7])
        #expect(e.description.contains("emulation failed"))

        // A hostile or buggy ndata must not read past the array.
        b.run.pointee.internal.ndata = 1000
        guard case let .internalError(big) = VCPUExit.decode(b.run) else { return }
        #expect(big.data.count == 16)

        b.run.pointee.exit_reason = 9999
        guard case .unknown(reason: 9999) = VCPUExit.decode(b.run) else { Issue.record("unknown"); return }

        b.run.pointee.exit_reason = UInt32(KVM_EXIT_SYSTEM_EVENT)
        b.run.pointee.system_event.type = UInt32(KVM_SYSTEM_EVENT_RESET)
        guard case .systemEvent(type: UInt32(KVM_SYSTEM_EVENT_RESET)) = VCPUExit.decode(b.run) else { Issue.record("event"); return }
    }
}
