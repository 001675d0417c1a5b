@testable import ApusCLI
import ArgumentParser
import JSON
import Testing

/// `apus ctl`: the request each command line makes, what it refuses before connecting, and
/// how a reply is printed.
@Suite struct CtlCommandTests {
    func request(_ arguments: [String]) throws -> String {
        try CtlCommand.parse(["/tmp/s"] + arguments).request().serialized
    }

    @Test func commandLinesBecomeRequests() throws {
        #expect(try request(["stats"]) == #"{"command":"stats"}"#)
        #expect(try request(["pause", "--json"]) == #"{"command":"pause"}"#)
        #expect(try request(["balloon", "128M"]) == #"{"command":"balloon","bytes":134217728}"#)
        #expect(try request(["balloon", "0"]) == #"{"command":"balloon","bytes":0}"#)
        #expect(try request(["balloon-stats"]) == #"{"command":"balloon-stats"}"#)
    }

    @Test(arguments: [["reboot"], ["balloon"], ["balloon", "lots"], ["balloon", "1G", "2G"], ["stats", "now"]])
    func badCommandLinesAreRefusedBeforeConnecting(_ arguments: [String]) {
        #expect(throws: (any Error).self) { try CtlCommand.parse(["/tmp/s"] + arguments) }
    }

    @Test func repliesReadAsLines() throws {
        let reply = try JSONParser().parse(#"{"ok":true,"state":"running","exits":{"total":5,"pio_in":2},"vcpu_exits":[3,2],"devices":[{"bus":"pio","name":"serial0","exits":5}],"device_events":[]}"#)
        #expect(ControlReplyText.render(reply) == """
            state: running
            exits:
              total: 5
              pio_in: 2
            vcpu_exits: 3, 2
            devices:
              bus=pio name=serial0 exits=5
            device_events: none

            """)
    }
}
