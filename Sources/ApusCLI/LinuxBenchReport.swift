/// The results of `apus bench boot`, `blk` and `net`: for each metric and column (a VMM, and for
/// net its data path), one sample per run; rendered as a table, JSON or CSV with medians, ranges
/// and ratios to one baseline column.
struct LinuxBenchReport {
    struct Metric {
        /// Key for JSON and CSV, e.g. "to-init", "rand-read-iops".
        let key: String
        /// Row label for the table, e.g. "time to init (s)".
        let label: String
        let higherIsBetter: Bool
        let digits: Int
        /// Whether a ratio of medians means anything: not for a share such as a loss in
        /// percent, which is often 0 and whose ratios swing by orders of magnitude on noise.
        var hasRatios = true
    }

    let benchmark: String
    /// One line on what was booted and how, printed above the table and kept in the JSON.
    let setup: String
    let runs: Int
    let columns: [BenchColumn]
    /// The column every ratio is taken against. One baseline rather than every pair: with five
    /// columns, pairs would bury the figures; the baseline is named wherever a ratio appears.
    let baseline: BenchColumn
    let metrics: [Metric]
    /// `samples[metric][column]`: one value per run.
    let samples: [[[Double]]]
    /// Whether the columns differ in their network data path (`apus bench net`): the table gets a
    /// header line for it and the JSON a `data_path` per result.
    var showsDataPath = false
    /// Failed boots per column, for benchmarks that go on after one (`apus bench net`: the
    /// nested host's emulation crashes guests under network load); empty when none failed.
    /// A failed boot adds no sample to any metric.
    var failures: [Int] = []

    private var anyFailed: Bool { failures.contains { $0 > 0 } }

    func summary(_ metric: Int, _ column: Int) -> SampleSummary { SampleSummary(samples[metric][column]) }

    /// The columns that get a ratio: all but the baseline.
    private var others: [BenchColumn] { columns.filter { $0 != baseline } }

    /// `column`'s median over the baseline's, or nil when either is missing, the baseline's is zero
    /// or the metric has no ratios.
    func ratio(_ metric: Int, _ column: BenchColumn) -> Double? {
        guard metrics[metric].hasRatios, let b = columns.firstIndex(of: baseline), let v = columns.firstIndex(of: column) else { return nil }
        let base = summary(metric, b).median
        return base > 0 && !samples[metric][v].isEmpty ? summary(metric, v).median / base : nil
    }

    private var ratioNote: String {
        others.isEmpty ? "" : "; ratios: each VMM's median over \(baseline.name)'s"
    }

    func table() -> String {
        var out = "apus bench \(benchmark): \(setup)\nmedian [min–max] of \(runs) run\(runs == 1 ? "" : "s"), VMMs alternated\(ratioNote)\n\n"
        let labels = metrics.map { "\($0.label), \($0.higherIsBetter ? "higher" : "lower") is better" }
        let ratioHeading = "ratio to \(baseline.name)"
        let cells = metrics.indices.map { m in
            columns.indices.map { v in
                let s = summary(m, v), d = metrics[m].digits
                return samples[m][v].isEmpty ? "—" : "\(format(s.median, digits: d)) [\(format(s.min, digits: d))–\(format(s.max, digits: d))]"
            }
        }
        let failedLabel = "failed boots (no figures)"
        let labelWidth = ((labels + [ratioHeading, failedLabel]).map(\.count).max() ?? 0) + 2
        let headers = [columns.map(\.name), columns.map(\.transport)] + (showsDataPath ? [columns.map(\.dataPath)] : [])
        let cellWidth = max(24, ((cells.flatMap { $0 } + headers.flatMap { $0 }).map(\.count).max() ?? 0) + 2)
        func line(_ first: String, _ cells: [String]) -> String {
            var text = pad(first, labelWidth) + cells.map { pad($0, cellWidth) }.joined()
            while text.last == " " { text.removeLast() }
            return text + "\n"
        }
        for header in headers { out += line("", header) }
        for m in metrics.indices { out += line(labels[m], cells[m]) }
        if anyFailed { out += line(failedLabel, failures.map { "\($0) of \(runs)" }) }
        // The ratios in a block of their own below, in the same columns as the VMMs they belong
        // to: nine columns side by side would not fit a terminal.
        guard !others.isEmpty else { return out }
        out += "\n" + line(ratioHeading, columns.map { $0 == baseline ? "" : $0.name })
        for m in metrics.indices {
            out += line(labels[m], columns.map { column in
                column == baseline ? "" : ratio(m, column).map { format($0, digits: 2) } ?? "—"
            })
        }
        return out
    }

    func json() -> String {
        func list(_ values: [Double], _ digits: Int) -> String {
            "[" + values.map { format($0, digits: digits) }.joined(separator: ", ") + "]"
        }
        let items = metrics.enumerated().map { m, metric in
            let results = columns.enumerated().map { v, column in
                let s = summary(m, v), d = metric.digits
                let dataPath = showsDataPath ? "\"data_path\": \"\(column.dataPath)\", " : ""
                // No sample (every boot failed): null figures, not zeros that look measured.
                func figure(_ value: Double) -> String { samples[m][v].isEmpty ? "null" : format(value, digits: d) }
                return "\"\(column.name)\": {\"transport\": \"\(column.transport)\", \(dataPath)\"median\": \(figure(s.median)), "
                    + "\"min\": \(figure(s.min)), \"max\": \(figure(s.max)), \"samples\": \(list(samples[m][v], d))}"
            }
            let ratios = others.map { "\"\($0.name)/\(baseline.name)\": \(ratio(m, $0).map { format($0, digits: 3) } ?? "null")" }
            return "    {\"metric\": \"\(metric.key)\", \"label\": \"\(metric.label)\", \"higher_is_better\": \(metric.higherIsBetter),\n"
                + "     \"results\": {\(results.joined(separator: ", "))},\n"
                + "     \"ratios\": {\(ratios.joined(separator: ", "))}}"
        }
        return "{\n  \"benchmark\": \"\(benchmark)\",\n  \"setup\": \"\(jsonEscaped(setup))\",\n  \"runs\": \(runs),\n"
            + "  \"baseline\": \"\(baseline.name)\",\n"
            + (anyFailed ? "  \"failed_boots\": {" + zip(columns, failures).map { "\"\($0.name)\": \($1)" }.joined(separator: ", ") + "},\n" : "")
            + "  \"metrics\": [\n" + items.joined(separator: ",\n") + "\n  ]\n}\n"
    }

    /// One row per metric and column; `over_baseline` is that column's median over the `baseline`
    /// column's, empty on the baseline's own rows. The `vmm` field is the column's name (with
    /// `-vhost` for net's vhost-net columns).
    func csv() -> String {
        var out = "metric,vmm,transport,median,min,max,baseline,over_baseline\n"
        for (m, metric) in metrics.enumerated() {
            for (v, column) in columns.enumerated() {
                let s = summary(m, v), d = metric.digits
                let ratio = column == baseline ? "" : ratio(m, column).map { format($0, digits: 3) } ?? ""
                // No field holds a comma or a quote (the transports' parentheses are fine), so none is quoted.
                out += "\(metric.key),\(column.name),\(column.transport),\(format(s.median, digits: d)),"
                    + "\(format(s.min, digits: d)),\(format(s.max, digits: d)),\(baseline.name),\(ratio)\n"
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
