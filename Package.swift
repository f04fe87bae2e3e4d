// swift-tools-version: 6.2
import CompilerPluginSupport
import PackageDescription

/// Settings every Swift target shares: Swift 6 mode is the package default; spans
/// bound to a view's lifetime need the Lifetimes feature.
let swiftSettings: [SwiftSetting] = [
    .enableExperimentalFeature("Lifetimes"),
    // Test-only fault injection in the system-call layer (docs/RELIABILITY.md); never in release builds.
    .define("MAPPED_RECORDS_FAULT_INJECTION", .when(configuration: .debug)),
]

/// The library layers also check memory safety (SE-0458): every use of an unsafe pointer or
/// an unsafe API is marked `unsafe`, so each one can be found and reviewed. Their warnings are
/// errors (SE-0480), an unmarked unsafe use among them: the build is the gate, not a habit.
/// (SwiftPM does not apply warning control to a package used as a remote dependency.)
let librarySettings: [SwiftSetting] = swiftSettings + [.strictMemorySafety(), .treatAllWarnings(as: .error)]

let package = Package(
    name: "MappedRecords",
    products: [
        .library(name: "MemoryMappedFiles", targets: ["MemoryMappedFiles"]),
        .library(name: "RecordTable", targets: ["RecordTable"]),
        .library(name: "MappedRegistry", targets: ["MappedRegistry"]),
        .library(name: "NamedTables", targets: ["NamedTables"]),
        .executable(name: "mrec", targets: ["mrec"]),
    ],
    // The @MappedRecord macro needs swift-syntax. It is on by default; an app that wants only the
    // core or the table format can turn it off (`traits: []` on its dependency, or
    // `swift build --disable-default-traits`) and builds without swift-syntax.
    traits: [
        .trait(
            name: "MappedRecordMacro",
            description: "The @MappedRecord macro, which declares a record's schema (needs swift-syntax)."),
        .default(enabledTraits: ["MappedRecordMacro"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-syntax", from: "603.0.1"),
    ],
    targets: [
        // Layer 0: declarations Glibc's overlay leaves out (memfd_create).
        .target(name: "CMappedShims"),
        // Layer 1: maps, views, streams and flush. Depends on nothing but the OS.
        .target(name: "MemoryMappedFiles", dependencies: ["CMappedShims"], swiftSettings: librarySettings),
        // Layer 2: the self-describing fixed-record table format. Depends on nothing but the core
        // (and, with the default trait, on the compiler plug-in of its macro).
        .target(
            name: "RecordTable",
            dependencies: [
                "MemoryMappedFiles",
                .target(name: "MappedRecordMacros", condition: .when(traits: ["MappedRecordMacro"])),
            ],
            swiftSettings: librarySettings),
        // The compiler plug-in behind @MappedRecord, @Field and @Padding.
        .macro(
            name: "MappedRecordMacros",
            dependencies: [
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
            ],
            swiftSettings: swiftSettings),

        // LMDB, from Debian's liblmdb-dev.
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        // Layer 3: named maps, regions and mutexes across processes, through an LMDB registry.
        .target(
            name: "MappedRegistry", dependencies: ["MemoryMappedFiles", "CLMDB"],
            swiftSettings: librarySettings),
        // Record tables by name (`table.publish(as:)`, `RecordTable.open(name:)`): the glue between
        // the table format and the registry, so that neither depends on the other.
        .target(
            name: "NamedTables", dependencies: ["MemoryMappedFiles", "RecordTable", "MappedRegistry"],
            swiftSettings: librarySettings),

        // Layer 4: the record tool.
        .executableTarget(
            name: "mrec",
            dependencies: [
                "RecordTable", "MappedRegistry", "NamedTables",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),

        // Ports of the seed's persisted examples, run by `make demo`.
        .target(name: "ImageColor", path: "Sources/Examples/ImageColor", swiftSettings: swiftSettings),
        .executableTarget(
            name: "brighten-image", dependencies: ["MemoryMappedFiles", "ImageColor"],
            path: "Sources/Examples/BrightenImage", swiftSettings: swiftSettings),
        .executableTarget(
            name: "brighten-region", dependencies: ["MemoryMappedFiles", "ImageColor"],
            path: "Sources/Examples/BrightenRegion", swiftSettings: swiftSettings),

        // Test support shared by the test targets and the helper process.
        .target(
            name: "TestSupport", dependencies: ["RecordTable", "CMappedShims"], path: "Tests/TestSupport",
            swiftSettings: swiftSettings),
        // The seed's three-process example (Process A, B and C), run by `make demo`.
        .executableTarget(
            name: "seed-process-a", dependencies: ["MappedRegistry"], path: "Sources/Examples/ProcessA",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "seed-process-b", dependencies: ["MappedRegistry"], path: "Sources/Examples/ProcessB",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "seed-process-c", dependencies: ["MappedRegistry"], path: "Sources/Examples/ProcessC",
            swiftSettings: swiftSettings),

        // Fuzz targets: their bodies, which the tests also replay over Tests/FuzzCorpus, and the
        // libFuzzer entry point that `make fuzz` builds with -sanitize=fuzzer,address.
        .target(
            name: "FuzzTargets", dependencies: ["MemoryMappedFiles", "RecordTable", "MappedRegistry"],
            path: "Tests/FuzzTargets", swiftSettings: swiftSettings),
        .executableTarget(
            name: "mapped-fuzz", dependencies: ["FuzzTargets"], path: "Tests/Fuzz", exclude: ["run.sh"],
            swiftSettings: swiftSettings),

        // A helper the tests start as a real second process.
        // The instruction-count gate's driver (make perfgate): release, no macro, no test support.
        .executableTarget(
            name: "mapped-perfgate", dependencies: ["MemoryMappedFiles", "RecordTable", "MappedRegistry"],
            path: "Tests/PerfGate", exclude: ["run.sh", "baseline.txt"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "mapped-test-helper",
            dependencies: ["MemoryMappedFiles", "RecordTable", "MappedRegistry", "NamedTables", "TestSupport"],
            path: "Tests/Helper", swiftSettings: swiftSettings),
        .testTarget(
            name: "MemoryMappedFilesTests", dependencies: ["MemoryMappedFiles", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "RecordTableTests", dependencies: ["RecordTable", "MemoryMappedFiles", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "MrecTests", dependencies: ["RecordTable", "MappedRegistry", "MemoryMappedFiles", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "MappedRegistryTests",
            dependencies: ["MappedRegistry", "MemoryMappedFiles", "RecordTable", "NamedTables", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FuzzCorpusTests", dependencies: ["FuzzTargets", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MappedRecordMacrosTests",
            dependencies: [
                "MappedRecordMacros", .product(name: "SwiftSyntaxMacrosTestSupport", package: "swift-syntax"),
            ],
            swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
