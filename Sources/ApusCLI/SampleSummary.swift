/// Median and range of a benchmark's repeated measurements. The median, not the mean: one
/// disturbed run on a noisy machine moves it the least.
struct SampleSummary {
    let median: Double
    let min: Double
    let max: Double

    init(_ values: [Double]) {
        let s = values.sorted()
        if s.isEmpty {
            median = 0
        } else {
            median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        min = s.first ?? 0
        max = s.last ?? 0
    }
}
