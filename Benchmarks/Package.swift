// swift-tools-version: 6.1
// Benchmarks for MappedRecords, kept in a nested package so that the library
// itself does not depend on the benchmark harness. Run with `make bench`.
import PackageDescription

import struct Foundation.URL

/// A path dependency is known by its directory's name, which depends on where the repository was cloned.
let libraryPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent

let package = Package(
    name: "MappedRecordsBenchmarks",
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .executableTarget(
            name: "MappedViews",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MemoryMappedFiles", package: libraryPackage),
            ],
            path: "Benchmarks/MappedViews",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RecordTables",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "RecordTable", package: libraryPackage),
                .product(name: "MemoryMappedFiles", package: libraryPackage),
            ],
            path: "Benchmarks/RecordTables",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Registry",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MappedRegistry", package: libraryPackage),
                .product(name: "MemoryMappedFiles", package: libraryPackage),
            ],
            path: "Benchmarks/Registry",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The MappedRecords side of `make compare` (Benchmarks/compare/run.sh): a plain program,
        // timed against C, numpy, LMDB and SQLite in the same run.
        .executableTarget(
            name: "compare-mappedrecords",
            dependencies: [
                .product(name: "MappedRegistry", package: libraryPackage),
                .product(name: "RecordTable", package: libraryPackage),
                .product(name: "MemoryMappedFiles", package: libraryPackage),
            ],
            path: "Compare"
        ),
        // Paging control: populate and huge pages against plain first touch (Benchmarks/paging/run.sh).
        .executableTarget(
            name: "paging-mappedrecords",
            dependencies: [.product(name: "MemoryMappedFiles", package: libraryPackage)],
            path: "Paging"
        ),
        // `make latency` (Benchmarks/latency/run.sh): append → visible between two processes,
        // for each way of waiting, beside a C busy-spin reader, in one run.
        .executableTarget(
            name: "latency-mappedrecords",
            dependencies: [
                .product(name: "RecordTable", package: libraryPackage),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Latency"
        ),
        // `make journal` (Benchmarks/journal/run.sh): shared appenders and series against the exclusive writer.
        .executableTarget(
            name: "journal-mappedrecords",
            dependencies: [.product(name: "RecordTable", package: libraryPackage)],
            path: "Journal"
        ),
    ],
    swiftLanguageModes: [.v6]
)
