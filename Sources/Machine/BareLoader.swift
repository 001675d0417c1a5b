import GuestMemory
import KVM
import CKVM

extension Machine {
    /// Loads a flat 64-bit binary at `MemoryMap.bareImage` and points every vCPU at it, already
    /// in long mode with the low 4 GiB identity-mapped. Each vCPU gets its own stack, its index
    /// in RDI and the vCPU count in RSI.
    ///
    /// Application processors are made runnable directly instead of waiting for INIT/SIPI: a
    /// bare guest has no code to start them.
    public func loadBare(image: [UInt8]) throws {
        let end = MemoryMap.bareImage + UInt64(image.count)
        guard !image.isEmpty, end <= MemoryMap.mmioHoleStart, memory.contains(GuestAddress(MemoryMap.bareImage), length: UInt64(image.count)) else {
            throw MachineError("the bare-metal image (\(image.count) bytes at 0x\(String(MemoryMap.bareImage, radix: 16))) does not fit in guest RAM; give --memory more")
        }
        guard vcpus.count <= MemoryMap.bareMaxCPUs else {
            throw MachineError("a bare-metal guest runs on at most \(MemoryMap.bareMaxCPUs) vCPUs (their stacks live below 0x\(String(MemoryMap.bareStackTop, radix: 16))), not \(vcpus.count)")
        }
        try LongMode.writeTables(into: memory)
        try memory.write(image, to: GuestAddress(MemoryMap.bareImage))
        for vcpu in vcpus {
            let stack = MemoryMap.bareStackTop - UInt64(vcpu.id) * MemoryMap.bareStackPerCPU
            try LongMode.enter(vcpu, entry: MemoryMap.bareImage, stack: stack,
                               rsi: UInt64(vcpus.count), rdi: UInt64(vcpu.id))
            if vcpu.id != 0 { try vcpu.setMPState(UInt32(KVM_MP_STATE_RUNNABLE)) }
        }
    }
}
