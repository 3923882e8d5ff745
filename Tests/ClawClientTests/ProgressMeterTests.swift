import ClawReactor
import Testing
@testable import ClawClient

@Suite struct ProgressMeterTests {
    let t0 = Instant(nanoseconds: 1_000_000_000)
    func at(_ ms: Int64) -> Instant { t0 + .milliseconds(ms) }

    @Test func sizesUseDecimalUnitsWithOneDecimal() {
        #expect(ProgressMeter.formatBytes(0) == "0 B")
        #expect(ProgressMeter.formatBytes(999) == "999 B")
        #expect(ProgressMeter.formatBytes(1000) == "1.0 KB")
        #expect(ProgressMeter.formatBytes(90_100_000) == "90.1 MB")
        #expect(ProgressMeter.formatBytes(200_000_000) == "200.0 MB")
        #expect(ProgressMeter.formatBytes(1_234_567_890) == "1.2 GB")
        // 999.96 KB rounds up into the next unit instead of printing "1000.0 KB".
        #expect(ProgressMeter.formatBytes(999_960) == "1.0 MB")
        #expect(ProgressMeter.formatBytes(5_000_000_000_000) == "5000.0 GB")
    }

    @Test func clocksAndDurations() {
        #expect(ProgressMeter.formatClock(9) == "0:09")
        #expect(ProgressMeter.formatClock(8.2) == "0:09")
        #expect(ProgressMeter.formatClock(754) == "12:34")
        #expect(ProgressMeter.formatClock(3723) == "1:02:03")
        #expect(ProgressMeter.formatClock(.infinity) == "--:--")
        #expect(ProgressMeter.formatElapsed(.milliseconds(400)) == "0.4 s")
        #expect(ProgressMeter.formatElapsed(.seconds(75)) == "1:15")
    }

    @Test func terminalLineIsRedrawnInPlaceAtMostTenTimesASecond() {
        var m = ProgressMeter(total: 200_000_000, start: t0, isTerminal: true, width: 100, name: "report.pdf")
        let first = m.update(done: 0, now: t0)
        #expect(first?.hasPrefix("\r") == true)
        #expect(first?.hasSuffix("\u{1B}[K") == true)
        #expect(first?.contains("\n") == false)
        #expect(m.update(done: 1_000_000, now: at(50)) == nil)
        #expect(m.update(done: 2_000_000, now: at(99)) == nil)
        #expect(m.update(done: 3_000_000, now: at(100)) != nil)
    }

    @Test func plainOutputPrintsAtTheStartThenEveryFiveSeconds() {
        var m = ProgressMeter(total: 100_000_000, start: t0, isTerminal: false, width: 80, name: "a.bin")
        let first = m.update(done: 0, now: t0)
        #expect(first == "a.bin  0%  0 B / 100.0 MB  --/s  ETA --:--\n")
        for ms in stride(from: Int64(100), to: 5000, by: 100) {
            #expect(m.update(done: ms * 10_000, now: at(ms)) == nil)
        }
        let later = m.update(done: 50_000_000, now: at(5000))
        #expect(later?.hasSuffix("\n") == true)
        #expect(later?.contains("\r") == false)
        #expect(later?.contains("50%") == true)
    }

    @Test func rateIsAMovingAverageAndGivesTheETA() {
        var m = ProgressMeter(total: 200_000_000, start: t0, isTerminal: true, width: 120, name: "big.iso")
        // 10 MB/s for 10 s.
        for ms in stride(from: Int64(0), through: 10_000, by: 100) { _ = m.update(done: ms * 10_000, now: at(ms)) }
        let rate = m.rate(now: at(10_000))
        #expect(rate.map { abs($0 - 10_000_000) < 1 } == true)
        #expect(m.statusLine(now: at(10_000)).contains("10.0 MB/s"))
        #expect(m.statusLine(now: at(10_000)).contains("ETA 0:10"))
        #expect(m.statusLine(now: at(10_000)).contains(" 50% ["))
        // Then 1 MB/s: after the window has passed the average reflects only the new speed.
        var done: Int64 = 100_000_000
        for ms in stride(from: Int64(10_100), through: 20_000, by: 100) {
            done += 100_000
            _ = m.update(done: done, now: at(ms))
        }
        let slow = m.rate(now: at(20_000)) ?? 0
        #expect(slow > 900_000 && slow < 1_300_000)
    }

    @Test func etaIsUnknownUntilThereIsARate() {
        var m = ProgressMeter(total: 1_000_000, start: t0, isTerminal: true, width: 80, name: "x")
        _ = m.update(done: 10_000, now: at(100))
        #expect(m.eta(now: at(100)) == nil)
        #expect(m.statusLine(now: at(100)).contains("ETA --:--"))
    }

    @Test func lineNeverWrapsWhateverTheWidthOrName() {
        let long = String(repeating: "very-long-file-name-", count: 8) + ".tar.gz"
        for width in [20, 40, 60, 80, 132, 250] {
            for name in ["", "a", long] {
                var m = ProgressMeter(total: 5_000_000_000, start: t0, isTerminal: true, width: width, name: name)
                _ = m.update(done: 1_234_567_890, now: at(3000))
                let line = m.statusLine(now: at(3000))
                #expect(LineEditor.displayWidth(line) < width, "width \(width), name \(name.count): \(line)")
            }
        }
        var m = ProgressMeter(total: 100, start: t0, isTerminal: true, width: 80, name: long)
        _ = m.update(done: 50, now: at(10))
        let line = m.statusLine(now: at(10))
        #expect(line.contains("…") && line.contains(".tar.gz") && line.contains("["))
    }

    @Test func barFillsWithThePercentage() {
        #expect(ProgressMeter.bar(percent: 0, width: 10) == "..........")
        #expect(ProgressMeter.bar(percent: 45, width: 20) == "#########...........")
        #expect(ProgressMeter.bar(percent: 100, width: 10) == "##########")
    }

    @Test func finishGivesTotalTimeAndAverageRate() {
        var m = ProgressMeter(total: 200_000_000, start: t0, isTerminal: true, width: 80, name: "f")
        _ = m.update(done: 200_000_000, now: at(16_000))
        let end = m.finish(now: at(16_000))
        #expect(end == "\rf  200.0 MB in 16.0 s, 12.5 MB/s average\u{1B}[K\n")
        var plain = ProgressMeter(total: 200_000_000, start: t0, isTerminal: false, width: 80, name: "f",
                                  resumedFrom: 100_000_000)
        _ = plain.update(done: 200_000_000, now: at(10_000))
        #expect(plain.finish(now: at(10_000)) == "f  200.0 MB in 10.0 s, 10.0 MB/s average (resumed at 100.0 MB)\n")
    }

    @Test func emptyFileIsComplete() {
        let m = ProgressMeter(total: 0, start: t0, isTerminal: false, width: 80, name: "empty")
        #expect(m.percent == 100)
    }

    @Test func controlCharactersInNamesAreNeutralised() {
        var m = ProgressMeter(total: 10, start: t0, isTerminal: true, width: 80, name: "evil\u{1B}[2Jname")
        let line = m.update(done: 5, now: t0) ?? ""
        #expect(!line.dropFirst().dropLast(3).contains("\u{1B}"))
        #expect(line.contains("evil?[2Jname"))
    }

    @Test func compactStatusForSeveralTransfers() {
        var m = ProgressMeter(total: 1000, start: t0, isTerminal: true, width: 80, name: "a-rather-long-name-for-a-file.bin")
        m.record(done: 450, now: at(100))
        let s = m.compactStatus(now: at(100), nameWidth: 12)
        #expect(s.hasPrefix("a-rath…e.bin 45% "))
    }
}
