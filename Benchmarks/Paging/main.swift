// Paging control (docs/PERFORMANCE.md, "Paging"): open-to-first-scan of a 512 MiB file with and
// without populating, and first touch of 512 MiB of memory with and without `.populate`, in one
// run, interleaved. usage: paging-mappedrecords DIR [ROUNDS]

import Foundation
import Glibc
import MemoryMappedFiles

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

let arguments = CommandLine.arguments
let directory = arguments.count > 1 ? arguments[1] : "/tmp"
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
let size = 512 << 20
let path = directory + "/paging-\(getpid()).bin"

// The file, written once through the descriptor, then read once so the page cache is warm.
do {
    let descriptor = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
    var chunk = [UInt64](repeating: 0, count: 1 << 17)
    for index in chunk.indices { chunk[index] = UInt64(index) }
    for offset in stride(from: 0, to: size, by: 1 << 20) {
        _ = chunk.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
    }
    close(descriptor)
}

func scan(_ view: borrowing MappedViewAccessor) -> UInt64 {
    view.withUnsafeMutableBytes { bytes in
        var sum: UInt64 = 0
        // One load per 4 KiB page and the rest of the page's words: a full scan.
        for word in bytes.bindMemory(to: UInt64.self) { sum &+= word }
        return sum
    }
}

func openAndScan(_ advice: MappingAdvice?) throws -> UInt64 {
    let started = now()
    let map = try MemoryMappedFile.createFromFile(path: path, access: .read)
    let view = try map.makeViewAccessor()
    if let advice { view.advise(advice) }
    let sum = scan(view)
    precondition(sum != 0)
    return now() - started
}

func touchMemory(_ options: MemoryMappedFileOptions) throws -> UInt64 {
    let started = now()
    let map = try MemoryMappedFile.createAnonymous(capacity: size, options: options)
    var view = try map.makeViewAccessor()
    for offset in stride(from: 0, to: size, by: 4096) { view.write(UInt8(1), at: offset) }
    return now() - started
}

_ = try openAndScan(nil)  // warm-up: the page cache holds the file from here on
var times: [String: [UInt64]] = [:]
let cases: [(String, () throws -> UInt64)] = [
    ("file: open, then scan", { try openAndScan(nil) }),
    ("file: open, .populateRead, then scan", { try openAndScan(.populateRead) }),
    ("file: open, .willNeed, then scan", { try openAndScan(.willNeed) }),
    ("file: open, .hugePages, then scan", { try openAndScan(.hugePages) }),
    ("memory: create, then touch every page", { try touchMemory([]) }),
    ("memory: create with .populate, then touch every page", { try touchMemory(.populate) }),
]
for _ in 0..<rounds {
    for (name, run) in cases { times[name, default: []].append(try run()) }
}
unlink(path)

func median(_ values: [UInt64]) -> Double { Double(values.sorted()[values.count / 2]) / 1e6 }
print("512 MiB, warm page cache, median of \(rounds) interleaved rounds.")
print("")
print("| case | ms (median) | ratio to its first row | spread (ms) |")
print("|---|--:|--:|--:|")
let fileBase = median(times[cases[0].0]!), memoryBase = median(times[cases[4].0]!)
for (index, (name, _)) in cases.enumerated() {
    let values = times[name]!
    let base = index < 4 ? fileBase : memoryBase
    let low = Double(values.min()!) / 1e6, high = Double(values.max()!) / 1e6
    print(
        "| \(name) | \(String(format: "%.1f", median(values))) | \(String(format: "%.2f", median(values) / base)) | \(String(format: "%.1f–%.1f", low, high)) |"
    )
}
