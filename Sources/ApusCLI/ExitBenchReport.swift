import Glibc
import Machine

/// The results of `apus bench exits` and their renderings: table, JSON, CSV, SVG.
struct ExitBenchReport {
    typealias Summary = SampleSummary

    struct Row {
        let kind: ExitBenchmark.Kind
        let apus: Summary
        let reference: Summary?
        /// apus median / C median, for the rows where the exit reaches the VMM.
        var ratio: Double? {
            guard kind.reachesUserspace, let reference, reference.median > 0 else { return nil }
            return apus.median / reference.median
        }
    }

    let iterations: Int
    let rounds: Int
    let rows: [Row]

    /// `apus` and `reference` are `[round][kind]` cycles per access.
    init(iterations: Int, rounds: Int, apus: [[Double]], reference: [[Double]]?) {
        self.iterations = iterations
        self.rounds = rounds
        rows = ExitBenchmark.Kind.allCases.map { kind in
            Row(kind: kind,
                apus: Summary(apus.map { $0[kind.rawValue] }),
                reference: reference.map { Summary($0.map { $0[kind.rawValue] }) })
        }
    }

    func table() -> String {
        func cell(_ s: Summary?) -> String {
            guard let s else { return "—" }
            return "\(format(s.median)) [\(format(s.min))–\(format(s.max))]"
        }
        var out = "apus bench exits: cycles per access, median [min–max] of \(rounds) rounds × \(iterations) accesses\n\n"
        out += pad("access", 36) + pad("apus", 26) + pad("C reference", 26) + "apus/C\n"
        for r in rows {
            let ratio = r.ratio.map { format($0, digits: 2) } ?? ""
            out += pad(r.kind.label, 36) + pad(cell(r.apus), 26) + pad(cell(r.reference), 26) + ratio + "\n"
        }
        return out
    }

    func json() -> String {
        func summary(_ s: Summary?) -> String {
            guard let s else { return "null" }
            return "{\"median\": \(format(s.median)), \"min\": \(format(s.min)), \"max\": \(format(s.max))}"
        }
        let items = rows.map { r in
            "    {\"kind\": \"\(r.kind.key)\", \"label\": \"\(r.kind.label)\", \"userspace\": \(r.kind.reachesUserspace), "
                + "\"median_cycles\": \(format(r.apus.median)), \"apus\": \(summary(r.apus)), \"c_reference\": \(summary(r.reference)), "
                + "\"apus_over_c\": \(r.ratio.map { format($0, digits: 3) } ?? "null")}"
        }
        return "{\n  \"unit\": \"cycles per access\",\n  \"iterations\": \(iterations),\n  \"rounds\": \(rounds),\n  \"results\": [\n"
            + items.joined(separator: ",\n") + "\n  ]\n}\n"
    }

    func csv() -> String {
        var out = "kind,apus_median,apus_min,apus_max,c_median,c_min,c_max,apus_over_c\n"
        for r in rows {
            let c = r.reference.map { "\(format($0.median)),\(format($0.min)),\(format($0.max))" } ?? ",,"
            out += "\(r.kind.key),\(format(r.apus.median)),\(format(r.apus.min)),\(format(r.apus.max)),\(c),\(r.ratio.map { format($0, digits: 3) } ?? "")\n"
        }
        return out
    }

    /// Horizontal bars on a log scale (the rows span three orders of magnitude).
    func svg() -> String {
        let labelWidth = 260.0, chartWidth = 480.0, rowHeight = 34.0, top = 50.0
        let values = rows.flatMap { [$0.apus.median] + ($0.reference.map { [$0.median] } ?? []) }.filter { $0 > 0 }
        let low = (values.min() ?? 1).log10Floor, high = (values.max() ?? 10).log10Ceil
        func x(_ v: Double) -> Double {
            guard v > 0, high > low else { return 0 }
            return (Glibc.log10(v) - low) / (high - low) * chartWidth
        }
        let height = top + Double(rows.count) * rowHeight + 40
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(labelWidth + chartWidth + 40))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<text x=\"10\" y=\"20\" font-size=\"15\">Cycles per guest access (log scale, median of \(rounds) rounds)</text>\n"
        s += "<rect x=\"\(Int(labelWidth))\" y=\"28\" width=\"12\" height=\"10\" fill=\"#2a6fdb\"/><text x=\"\(Int(labelWidth) + 16)\" y=\"37\">apus</text>\n"
        s += "<rect x=\"\(Int(labelWidth) + 70)\" y=\"28\" width=\"12\" height=\"10\" fill=\"#9aa5b1\"/><text x=\"\(Int(labelWidth) + 86)\" y=\"37\">C reference</text>\n"
        var decade = low
        while decade <= high {
            let gx = labelWidth + (decade - low) / (high - low) * chartWidth
            s += "<line x1=\"\(f1(gx))\" y1=\"\(f1(top - 4))\" x2=\"\(f1(gx))\" y2=\"\(f1(height - 30))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f1(gx))\" y=\"\(f1(height - 14))\" text-anchor=\"middle\">\(format(pow10(decade)))</text>\n"
            decade += 1
        }
        for (i, r) in rows.enumerated() {
            let y = top + Double(i) * rowHeight
            s += "<text x=\"\(f1(labelWidth - 8))\" y=\"\(f1(y + 16))\" text-anchor=\"end\">\(r.kind.label.xmlEscaped)</text>\n"
            s += "<rect x=\"\(f1(labelWidth))\" y=\"\(f1(y + 3))\" width=\"\(f1(x(r.apus.median)))\" height=\"12\" fill=\"#2a6fdb\"/>"
            s += "<text x=\"\(f1(labelWidth + x(r.apus.median) + 4))\" y=\"\(f1(y + 13))\">\(format(r.apus.median))</text>\n"
            if let c = r.reference {
                s += "<rect x=\"\(f1(labelWidth))\" y=\"\(f1(y + 16))\" width=\"\(f1(x(c.median)))\" height=\"12\" fill=\"#9aa5b1\"/>"
                s += "<text x=\"\(f1(labelWidth + x(c.median) + 4))\" y=\"\(f1(y + 26))\">\(format(c.median))</text>\n"
            }
        }
        return s + "</svg>\n"
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

/// A number with `digits` decimals (0: rounded to an integer), without Foundation.
func format(_ v: Double, digits: Int = 0) -> String {
    guard v.isFinite else { return "0" }
    if digits == 0 { return String(Int(v.rounded())) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((v * scale).rounded())
    let whole = n / Int(scale), frac = abs(n % Int(scale))
    var fracText = String(frac)
    while fracText.count < digits { fracText = "0" + fracText }
    return "\(whole).\(fracText)"
}

private func f1(_ v: Double) -> String { format(v, digits: 1) }
private func pow10(_ e: Double) -> Double { Glibc.pow(10, e) }

extension Double {
    fileprivate var log10Floor: Double { Glibc.floor(Glibc.log10(self)) }
    /// At least one decade above `log10Floor`, so the scale is never empty.
    fileprivate var log10Ceil: Double { Swift.max(Glibc.ceil(Glibc.log10(self)), log10Floor + 1) }
}

extension String {
    fileprivate var xmlEscaped: String {
        var out = ""
        for ch in self {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(ch)
            }
        }
        return out
    }
}
