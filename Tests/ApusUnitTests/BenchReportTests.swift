@testable import ApusCLI
import Machine
import Testing

@Suite struct ExitBenchReportTests {
    let kinds = ExitBenchmark.Kind.allCases.count

    @Test func perAccessDividesByIterationsAndChecksTheCount() throws {
        let reports = (0..<(2 * kinds)).map { UInt64(($0 + 1) * 100) }
        let rounds = try ExitBenchmark.perAccess(reports, iterations: 100, repetitions: 2)
        #expect(rounds.count == 2 && rounds[0].count == kinds)
        #expect(rounds[0][0] == 1 && rounds[1][0] == Double(kinds + 1))
        #expect(throws: MachineError.self) { try ExitBenchmark.perAccess([1, 2, 3], iterations: 1, repetitions: 1) }
    }

    @Test func medianRangeAndRatioOfUserspaceRowsOnly() {
        let apus = [[Double]](repeating: [Double](repeating: 110, count: kinds), count: 3)
            .enumerated().map { i, row in row.map { $0 + Double(i) } }      // 110, 111, 112
        let c = [[Double]](repeating: [Double](repeating: 100, count: kinds), count: 3)
        let report = ExitBenchReport(iterations: 10, rounds: 3, apus: apus, reference: c)
        let pio = report.rows[ExitBenchmark.Kind.pioWriteUser.rawValue]
        #expect(pio.apus.median == 111 && pio.apus.min == 110 && pio.apus.max == 112)
        #expect(pio.ratio == 1.11)
        #expect(report.rows[ExitBenchmark.Kind.fastMMIOIOEventFD.rawValue].ratio == nil)
    }

    @Test func renderingsCarryEveryKind() {
        let rows = [[Double]](repeating: (0..<kinds).map { Double($0 + 1) * 1000 }, count: 1)
        let report = ExitBenchReport(iterations: 10, rounds: 1, apus: rows, reference: rows)
        let json = report.json(), csv = report.csv(), svg = report.svg(), table = report.table()
        for kind in ExitBenchmark.Kind.allCases {
            #expect(json.contains("\"kind\": \"\(kind.key)\""))
            #expect(csv.contains("\n\(kind.key),"))
            #expect(table.contains(kind.label))
        }
        #expect(json.contains("\"apus_over_c\": 1.000"))
        #expect(csv.split(separator: "\n").count == kinds + 1)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("MMIO ioeventfd (len 4, datamatch)"))
    }

    @Test func formatsWithoutFoundation() {
        #expect(format(1234.4) == "1234")
        #expect(format(1.005, digits: 2) == "1.00" || format(1.005, digits: 2) == "1.01")
        #expect(format(0.5, digits: 3) == "0.500")
    }
}
