import ClawReactor
import ClawAssistant

/// Turns the daemon's `history` answer into lines for a terminal.
enum HistoryText {
    static func render(_ body: [UInt8]) -> String {
        guard let v = try? JSONValue.parse(body), let items = v["exchanges"]?.arrayValue else {
            return "[the daemon's history answer was not understood]\n"
        }
        if items.isEmpty { return "[no history yet]\n" }
        var out = ""
        let total = v["total"]?.intValue ?? items.count
        if total > items.count { out += "[\(items.count) of \(total) exchanges; --limit shows more]\n" }
        for item in items {
            let time = Int64(item["time"]?.doubleValue ?? 0)
            out += "── \(LocalDate(unixTime: time)) \(LocalDate.clockTime(unixTime: time))\n"
            out += "you:  \(item["user"]?.stringValue ?? "")\n"
            out += "claw: \(item["assistant"]?.stringValue ?? "")\n"
        }
        return out
    }
}
