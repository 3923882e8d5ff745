import ClawChannel
import ClawReactor
import Glibc

/// The median and spread of one quantity measured once per round.
struct Summary {
    let samples: [Double]
    let median: Double
    let min: Double
    let max: Double

    init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "a summary needs at least one sample")
        self.samples = samples
        let sorted = samples.sorted()
        let mid = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        min = sorted[0]
        max = sorted[sorted.count - 1]
    }
}

/// CPU time of this process. Every scenario here runs on one thread, so process time is the
/// time of the thread being measured.
struct CPUUsage {
    /// User plus system time, from `CLOCK_PROCESS_CPUTIME_ID` (nanosecond precision).
    var total: Double
    /// System (kernel) time alone, from `getrusage`; its split from user time is an estimate
    /// the kernel makes from ticks, so only its share of `total` is meaningful.
    var system: Double
    var user: Double

    static func now() -> CPUUsage {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        return CPUUsage(total: Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9,
                        system: seconds(ru.ru_stime), user: seconds(ru.ru_utime))
    }

    static func - (a: CPUUsage, b: CPUUsage) -> CPUUsage {
        CPUUsage(total: a.total - b.total, system: a.system - b.system, user: a.user - b.user)
    }

    /// The kernel's share of the CPU time, 0...1.
    var systemShare: Double {
        let split = system + user
        return split > 0 ? system / split : 0
    }

    private static func seconds(_ tv: timeval) -> Double { Double(tv.tv_sec) + Double(tv.tv_usec) / 1e6 }
}

/// Peak resident memory (`VmHWM`) of this process or of a child, from /proc. Linux lets the
/// owner of a process reset the peak to the current RSS, so that each measurement has its own.
enum PeakMemory {
    /// `process` is "self" or a pid. Nil if /proc has no such process.
    static func kiB(of process: String) -> Int? {
        guard let bytes = try? AtomicFile.read("/proc/\(process)/status") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.dropFirst(6).filter(\.isNumber))
        }
        return nil
    }

    /// Sets the peak to the current RSS (`echo 5 > /proc/PID/clear_refs`); false if refused.
    static func reset(_ process: String) -> Bool {
        let fd = open("/proc/\(process)/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }
}

/// Resident memory of a process now, from `/proc/PID/status` (KiB as the kernel reports them).
struct ResidentMemory {
    /// All resident pages: anonymous, file-backed and shared.
    var vmRSSKiB: Int
    /// Anonymous pages alone (heap, stacks, private mappings): what the process itself allocated.
    var rssAnonKiB: Int
    /// File-backed pages: the executable and the shared libraries (mostly shareable).
    var rssFileKiB: Int
    /// Memory mappings (lines of `/proc/PID/maps`): the kernel allows `vm.max_map_count` of
    /// them (65530 by default), and every libsodium secure allocation takes several.
    var mappings: Int

    /// `process` is "self" or a pid. Nil if /proc has no such process or lacks the fields.
    static func of(_ process: String) -> ResidentMemory? {
        guard let bytes = try? AtomicFile.read("/proc/\(process)/status") else { return nil }
        var fields: [Substring: Int] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon]
            if name == "VmRSS" || name == "RssAnon" || name == "RssFile" { fields[name] = Int(line[colon...].filter(\.isNumber)) }
        }
        guard let rss = fields["VmRSS"], let anon = fields["RssAnon"], let file = fields["RssFile"],
              let maps = try? AtomicFile.read("/proc/\(process)/maps") else { return nil }
        return ResidentMemory(vmRSSKiB: rss, rssAnonKiB: anon, rssFileKiB: file, mappings: maps.lazy.filter { $0 == 0x0A }.count)
    }
}

/// The `p`-th percentile (0...100) of `sorted` by nearest rank: the smallest sample with at least
/// p% of the samples at or below it. With 200 samples, p99 is the second largest.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    precondition(!sorted.isEmpty, "a percentile needs at least one sample")
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// Wall time and CPU time of a block of work.
struct Timing {
    var wall: Double
    var cpu: CPUUsage

    /// Runs `body` `iterations` times and measures the whole.
    static func of<E: Error>(_ iterations: Int, _ body: () throws(E) -> Void) throws(E) -> Timing {
        let clock = MonotonicClock()
        let wall0 = clock.now
        let cpu0 = CPUUsage.now()
        for _ in 0..<iterations { try body() }
        let cpu = CPUUsage.now() - cpu0
        return Timing(wall: (clock.now - wall0).seconds, cpu: cpu)
    }
}

/// A failure that ends the run, said in one line.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
