/// The results of `apus bench boot` and `apus bench blk`: for each metric and VMM, one sample per
/// run; rendered as a table, JSON or CSV with medians, ranges and apus/QEMU ratios.
struct LinuxBenchReport {
    struct Metric {
        /// Key for JSON and CSV, e.g. "to-init", "rand-read-iops".
        let key: String
        /// Row label for the table, e.g. "time to init (s)".
        let label: String
        let higherIsBetter: Bool
        let digits: Int
    }

    let benchmark: String
    /// One line on what was booted and how, printed above the table and kept in the JSON.
    let setup: String
    let runs: Int
    let vmms: [BenchVMM]
    let metrics: [Metric]
    /// `samples[metric][vmm]`: one value per run.
    let samples: [[[Double]]]

    func summary(_ metric: Int, _ vmm: Int) -> SampleSummary { SampleSummary(samples[metric][vmm]) }

    /// The QEMU machines in the comparison (apus's ratios are taken against each).
    private var qemus: [BenchVMM] { vmms.filter(\.isQEMU) }

    /// apus's median over `qemu`'s, or nil when either is missing or zero.
    func ratio(_ metric: Int, over qemu: BenchVMM) -> Double? {
        guard let a = vmms.firstIndex(of: .apus), let q = vmms.firstIndex(of: qemu) else { return nil }
        let apus = summary(metric, a).median, other = summary(metric, q).median
        return other > 0 ? apus / other : nil
    }

    func table() -> String {
        var out = "apus bench \(benchmark): \(setup)\nmedian [min–max] of \(runs) run\(runs == 1 ? "" : "s"), VMMs alternated\n\n"
        let labels = metrics.map { "\($0.label), \($0.higherIsBetter ? "higher" : "lower") is better" }
        let labelWidth = (labels.map(\.count).max() ?? 0) + 2
        let cellWidth = 24
        func line(_ first: String, _ cells: [String]) -> String {
            var text = pad(first, labelWidth) + cells.map { pad($0, cellWidth) }.joined()
            while text.last == " " { text.removeLast() }
            return text + "\n"
        }
        out += line("", vmms.map(\.rawValue) + qemus.map { "apus/\($0.rawValue)" })
        out += line("", vmms.map(\.transport))
        for (m, metric) in metrics.enumerated() {
            let d = metric.digits
            let cells = vmms.indices.map { v in
                let s = summary(m, v)
                return "\(format(s.median, digits: d)) [\(format(s.min, digits: d))–\(format(s.max, digits: d))]"
            }
            out += line(labels[m], cells + qemus.map { ratio(m, over: $0).map { format($0, digits: 2) } ?? "—" })
        }
        return out
    }

    func json() -> String {
        func list(_ values: [Double], _ digits: Int) -> String {
            "[" + values.map { format($0, digits: digits) }.joined(separator: ", ") + "]"
        }
        let items = metrics.enumerated().map { m, metric in
            let results = vmms.enumerated().map { v, vmm in
                let s = summary(m, v), d = metric.digits
                return "\"\(vmm.rawValue)\": {\"transport\": \"\(vmm.transport)\", \"median\": \(format(s.median, digits: d)), "
                    + "\"min\": \(format(s.min, digits: d)), \"max\": \(format(s.max, digits: d)), \"samples\": \(list(samples[m][v], d))}"
            }
            let ratios = qemus.map { "\"apus/\($0.rawValue)\": \(ratio(m, over: $0).map { format($0, digits: 3) } ?? "null")" }
            return "    {\"metric\": \"\(metric.key)\", \"label\": \"\(metric.label)\", \"higher_is_better\": \(metric.higherIsBetter),\n"
                + "     \"results\": {\(results.joined(separator: ", "))},\n"
                + "     \"ratios\": {\(ratios.joined(separator: ", "))}}"
        }
        return "{\n  \"benchmark\": \"\(benchmark)\",\n  \"setup\": \"\(jsonEscaped(setup))\",\n  \"runs\": \(runs),\n"
            + "  \"metrics\": [\n" + items.joined(separator: ",\n") + "\n  ]\n}\n"
    }

    func csv() -> String {
        var out = "metric,vmm,transport,median,min,max,apus_over_vmm\n"
        for (m, metric) in metrics.enumerated() {
            for (v, vmm) in vmms.enumerated() {
                let s = summary(m, v), d = metric.digits
                let ratio = vmm.isQEMU ? ratio(m, over: vmm).map { format($0, digits: 3) } ?? "" : ""
                out += "\(metric.key),\(vmm.rawValue),\(vmm.transport),\(format(s.median, digits: d)),"
                    + "\(format(s.min, digits: d)),\(format(s.max, digits: d)),\(ratio)\n"
            }
        }
        return out
    }
}

/// `text` with JSON's mandatory escapes (quote, backslash, control characters).
func jsonEscaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
