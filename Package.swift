// swift-tools-version: 6.1
// Apus — a virtual machine monitor for Linux x86-64 on /dev/kvm.
//
// Module layering (each depends only on modules above it; see docs/architecture.md):
//   CKVM          C headers: <linux/kvm.h>, ioctl numbers, a non-variadic ioctl
//   CSeccomp      libseccomp (Debian libseccomp-dev), a system library
//   CFatalSignal  the async-signal-safe fatal-signal handler (terminal restore, seccomp report)
//   CSanitizers   hooks into sanitizer runtimes (TSan's acquire/release, the sandbox notice),
//                 weak: they do nothing outside a sanitizer build
//   Locking       `Locked`, a Mutex that ThreadSanitizer sees (a leaf: every module with locks)
//   ByteOrder     little-endian byte helpers (a leaf: every module that reads or builds bytes)
//   JSON          a strict, bounded JSON parser and writer (the control socket's protocol; a leaf)
//   LinuxSupport  syscalls as Swift values: errors, eventfd, epoll, mmap, threads, signals,
//                 the terminal, seccomp filters
//   GuestMemory   guest-physical RAM with bounds-checked access
//   KVM           typed KVM ioctls: system, VM, vCPU, exits (mechanism, no policy)
//   Diagnostics   logging (swift-log) with guest-triggered messages once per cause, then counted
//   DeviceBus     the BusDevice protocol and the address-range bus
//   Boot          bzImage parsing, boot_params, e820, ACPI tables with a small AML writer, MP table
//   PCI           PCI config space, mechanism #1 and ECAM, BAR decoding, MSI-X (no virtio)
//   Virtio        the virtio device model core: split virtqueues, status, features, transports
//   Devices       device models (legacy UART, debug exit, test devices)
//   Machine       the board: memory map, loaders, vCPU threads, lifecycle, stats, tracing
//   ApusCLI       the command line (`apus run`, `apus bench`)
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Apus",
    products: [
        .executable(name: "apus", targets: ["apus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CKVM"),
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .target(name: "CFatalSignal"),
        .target(name: "CSanitizers"),
        .target(name: "Locking", dependencies: ["CSanitizers"], swiftSettings: strict),
        .target(name: "ByteOrder", swiftSettings: strict),
        .target(name: "JSON", swiftSettings: strict),
        .target(name: "Diagnostics", dependencies: ["Locking", .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .target(name: "LinuxSupport", dependencies: ["CKVM", "CSeccomp", "CFatalSignal", "CSanitizers"], swiftSettings: strict),
        .target(name: "GuestMemory", dependencies: ["LinuxSupport"], swiftSettings: strict),
        .target(name: "KVM", dependencies: ["CKVM", "LinuxSupport"], swiftSettings: strict),
        .target(name: "DeviceBus", dependencies: ["ByteOrder"], swiftSettings: strict),
        .target(name: "Boot", dependencies: ["ByteOrder"], swiftSettings: strict),
        .target(name: "PCI", dependencies: ["ByteOrder", "DeviceBus", "Locking"], swiftSettings: strict),
        .target(name: "Virtio", dependencies: ["ByteOrder", "Diagnostics", "GuestMemory", "DeviceBus", "Locking", "PCI"], swiftSettings: strict),
        .target(name: "Devices", dependencies: ["ByteOrder", "CKVM", "DeviceBus", "Diagnostics", "GuestMemory", "LinuxSupport", "Locking", "Virtio"], swiftSettings: strict),
        .target(
            name: "Machine",
            dependencies: ["CKVM", "Diagnostics", "JSON", "LinuxSupport", "Locking", "GuestMemory", "KVM", "DeviceBus", "Devices", "Boot", "PCI", "Virtio"],
            swiftSettings: strict),
        .target(
            name: "ApusCLI",
            dependencies: ["Machine", "Devices", "JSON", "KVM", "LinuxSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),
        .executableTarget(name: "apus", dependencies: ["ApusCLI"], swiftSettings: strict),
        .testTarget(
            name: "ApusUnitTests",
            dependencies: ["ByteOrder", "CKVM", "Diagnostics", "JSON", "LinuxSupport", "Locking", "GuestMemory", "KVM", "DeviceBus", "Devices", "Boot", "PCI", "Virtio", "Machine", "ApusCLI"],
            swiftSettings: strict),
        .testTarget(
            name: "ApusKVMTests",
            dependencies: ["ByteOrder", "CKVM", "Diagnostics", "JSON", "LinuxSupport", "Locking", "GuestMemory", "KVM", "DeviceBus", "Devices", "PCI", "Virtio", "Machine"],
            swiftSettings: strict),
    ]
)

// libFuzzer targets (Fuzz/, run by `make fuzz`; see docs/security.md). Each is an executable
// whose only entry point is `LLVMFuzzerTestOneInput`: libFuzzer supplies `main`, so they link
// only in a build with `--sanitize fuzzer`, where SwiftPM also drops its renaming of `main`.
// They are declared only when APUS_FUZZ is set (the Makefile sets it and builds them into
// .build-fuzz), so a plain `swift build` or `swift test` never sees them.
if Context.environment["APUS_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("split-queue", ["GuestMemory", "Virtio"]),
        ("virtio-blk", ["GuestMemory", "Virtio", "Devices"]),
        ("virtio-net", ["GuestMemory", "Virtio", "Devices", "LinuxSupport"]),
        ("virtio-mmio", ["GuestMemory", "Virtio", "Devices"]),
        ("virtio-pci", ["GuestMemory", "Virtio", "Devices", "PCI"]),
        ("pci-root", ["GuestMemory", "Virtio", "Devices", "PCI", "DeviceBus"]),
        ("bzimage", ["Boot"]),
        ("size-parser", ["ApusCLI"]),
        ("json", ["JSON"]),
    ]
    package.targets.append(.target(name: "FuzzKit", dependencies: ["GuestMemory", "LinuxSupport", "Virtio", "Devices", "PCI"],
                                   path: "Fuzz/FuzzKit", swiftSettings: strict))
    for t in fuzzTargets {
        package.targets.append(.executableTarget(name: "fuzz-\(t.name)", dependencies: ["FuzzKit"] + t.dependencies,
                                                 path: "Fuzz/\(t.name)", swiftSettings: strict))
    }
}
