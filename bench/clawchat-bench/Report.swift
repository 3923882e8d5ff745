import ClawReactor
import Glibc

/// One line per step on stderr while a terminal watches; silent otherwise, so that redirected
/// output holds the results alone.
struct Progress {
    let enabled = isatty(2) == 1

    func say(_ line: String) {
        guard enabled else { return }
        var bytes = Array("\u{1B}[2K\r\(line)".utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// Clears the progress line.
    func done() { say("") }
}

// MARK: Numbers as text

/// `x` rounded to `digits` decimals (no Foundation here, so no `String(format:)`).
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "-" }
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let n = Int((abs(x) * Double(scale)).rounded())
    var text = (x < 0 && n != 0 ? "-" : "") + String(n / scale)
    if digits > 0 {
        let fraction = String(n % scale)
        text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    return text
}

/// A rate with three significant figures and a k/M suffix: 987, 41.2k, 1.23M.
func compact(_ x: Double) -> String {
    guard x.isFinite else { return "-" }
    func sig(_ v: Double) -> String { fixed(v, v >= 100 ? 0 : v >= 10 ? 1 : 2) }
    if x >= 999_500 { return sig(x / 1e6) + "M" }
    if x >= 999.5 { return sig(x / 1e3) + "k" }
    return sig(x)
}

func percent(_ x: Double) -> String { x.isFinite ? fixed(x * 100, 0) + "%" : "-" }

/// "median (min–max)" of per-round samples, each formatted by `format`.
func spread(_ s: Summary, _ format: (Double) -> String) -> String {
    s.samples.count == 1 ? format(s.median) : "\(format(s.median)) (\(format(s.min))–\(format(s.max)))"
}

// MARK: Tables

/// A plain-text table: a header row, aligned columns, numbers right-aligned.
struct Table {
    var headers: [String]
    /// Columns aligned left; all others are aligned right.
    var leftAligned: Set<Int> = [0]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return leftAligned.contains(i) ? cell + pad : pad + cell
            }.joined(separator: "   ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "   ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}

// MARK: JSON

/// Just enough JSON to write the machine-readable report; keys keep their order.
indirect enum JSON {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])

    static func summary(_ s: Summary) -> JSON {
        .object([("median", .number(s.median)), ("min", .number(s.min)), ("max", .number(s.max)),
                 ("samples", .array(s.samples.map { .number($0) }))])
    }

    func render(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .number(let x):
            // JSON has no NaN or infinity.
            return x.isFinite ? "\(x)" : "null"
        case .integer(let n): return "\(n)"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return jsonQuoted(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy({ if case .number = $0 { return true }; return false }) {
                return "[" + items.map { $0.render() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { inner + $0.render(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{\n" + fields.map { "\(inner)\(jsonQuoted($0.0)): \($0.1.render(indent: inner))" }.joined(separator: ",\n")
                + "\n\(indent)}"
        }
    }

}
