import Devices
import JSON

/// The control socket's view of a running `Machine`.
struct MachineControlTarget: ControlTarget {
    let machine: Machine

    init(_ machine: Machine) { self.machine = machine }

    func statistics() -> [(String, JSONValue)] {
        let perVCPU = machine.liveVCPUStatistics()
        var total = ExitStatistics(pioDevices: machine.pio.entries.count, mmioDevices: machine.mmio.entries.count)
        for s in perVCPU { total.merge(s) }
        var exits: [(String, JSONValue)] = [("total", .integer(total.byKind.reduce(0, +)))]
        for kind in ExitStatistics.Kind.allCases { exits.append((kind.key, .integer(total[kind]))) }
        var devices: [JSONValue] = []
        for (bus, counts) in [(machine.pio, total.byPIODevice), (machine.mmio, total.byMMIODevice)] {
            for e in bus.entries {
                devices.append(.object(["bus": .string(bus.name), "name": .string(e.device.name),
                                        "base": .integer(e.base), "exits": .integer(counts[e.index])]))
            }
        }
        let events = machine.events.counts.map {
            JSONValue.object(["source": .string($0.source), "cause": .string($0.cause), "count": .integer($0.count)])
        }
        var members: [(String, JSONValue)] = [
            ("state", .string(machine.control.runState.rawValue)),
            ("vcpus", .integer(machine.vcpus.count)),
            ("exits", .object(exits)),
            ("vcpu_exits", .array(perVCPU.map { .integer($0.byKind.reduce(0, +)) })),
            ("devices", .array(devices)),
            ("device_events", .array(events)),
        ]
        if let balloon = machine.balloon {
            let sizes = balloon.sizes
            members.append(("balloon", .object(["target": .integer(sizes.target), "actual": .integer(sizes.actual)])))
        }
        return members
    }

    func pause(_ completion: @escaping @Sendable (PauseOutcome) -> Void) { machine.control.pause(completion) }
    func resume() -> Bool { machine.control.resume() }
    var runState: RunState { machine.control.runState }
    var memorySize: UInt64 { machine.config.memorySize }
    var balloon: (any BalloonControl)? { machine.balloon }

    func pressPowerButton() -> Result<Void, ControlRequestError> {
        guard let button = machine.powerButton else {
            return .failure(.init("this guest has no power button: it was booted without ACPI (--acpi off) or is a bare-metal guest; stop apus with SIGTERM instead"))
        }
        button.press()
        return .success(())
    }
}

extension ExitStatistics.Kind {
    /// The kind's name in `stats` replies.
    var key: String {
        switch self {
        case .pioRead: "pio_in"
        case .pioWrite: "pio_out"
        case .mmioRead: "mmio_read"
        case .mmioWrite: "mmio_write"
        case .pioUnclaimed: "pio_unclaimed"
        case .mmioUnclaimed: "mmio_unclaimed"
        case .interrupted: "interrupted"
        case .other: "other"
        }
    }
}
