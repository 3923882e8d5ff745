import Glibc

/// True in `scripts/sanitize` runs (it sets CLAWCHAT_TEST_REDUCED=1): an instrumented build that
/// runs several times slower and keeps freed memory in a quarantine.
let underSanitizer = getenv("CLAWCHAT_TEST_REDUCED") != nil

/// The size of a bulk-transfer test: all of it normally; 1/16 under a sanitizer: the same code
/// paths, at a pace the instrumented build keeps within CI time.
func bulkSize<T: BinaryInteger>(_ full: T) -> T { underSanitizer ? full / 16 : full }

/// A promptness limit: as written normally; four times as long under a sanitizer (the property
/// checked stays the same).
func promptLimit(_ limit: Duration) -> Duration { underSanitizer ? limit * 4 : limit }
