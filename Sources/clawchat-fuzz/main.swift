// clawchat-fuzz: fuzz targets for every parser of outside bytes (FuzzTargets.swift).
//   Built normally:   clawchat-fuzz TARGET FILE...   replays inputs (crash reproductions, corpora)
//                     clawchat-fuzz --list           names the targets
//   Built by scripts/fuzz with -sanitize=fuzzer,address -DFUZZING: libFuzzer drives the target
//   named by $CLAWCHAT_FUZZ_TARGET.
import ClawReactor
import Glibc

func argument(_ i: Int) -> String { String(cString: CommandLine.unsafeArgv[i]!) }

func complain(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

let targetName = getenv("CLAWCHAT_FUZZ_TARGET").map { String(cString: $0) } ?? ""
guard FuzzTargets.all[targetName] != nil else {
    complain("set CLAWCHAT_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: " "))")
    exit(2)
}
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    let name = String(cString: getenv("CLAWCHAT_FUZZ_TARGET")!)
    FuzzTargets.all[name]!(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
})
#else
if CommandLine.argc == 2 && argument(1) == "--list" {
    print(FuzzTargets.all.keys.sorted().joined(separator: "\n"))
    exit(0)
}
guard CommandLine.argc >= 3, let target = FuzzTargets.all[argument(1)] else {
    complain("usage: clawchat-fuzz TARGET FILE... (replays inputs) | --list; targets: \(FuzzTargets.all.keys.sorted().joined(separator: " "))")
    exit(2)
}
var replayed = 0
for i in 2..<Int(CommandLine.argc) {
    guard let bytes = try? AtomicFile.read(argument(i), limit: 16 << 20) else {
        complain("cannot read \(argument(i))")
        exit(1)
    }
    target(bytes)
    replayed += 1
}
print("replayed \(replayed) input(s) through \(argument(1)) without a crash")
#endif
