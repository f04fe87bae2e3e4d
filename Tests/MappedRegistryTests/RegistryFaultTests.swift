import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@testable import MappedRegistry

/// The names a registry lists whose holders are alive.
func liveNames(_ registry: Registry) throws -> [String] {
    try registry.entries().filter { registry.holders(of: $0).isHeld }.map(\.name)
}

@Suite("Registry under injected failures: mmap, fallocate, fsync and the LMDB commit")
struct RegistryFaultTests {
    let directory = TemporaryDirectory()

    /// A named shared map, a named file region and a mutex, opened and closed.
    func workload(_ registry: Registry, _ tag: String) throws {
        let map = try MemoryMappedFile.createNew(name: "shared-\(tag)", capacity: 8192, registry: registry)
        var view = try map.makeViewAccessor()
        view.write(UInt64(42), at: 0)
        let other = try MemoryMappedFile.openExisting(name: "shared-\(tag)", registry: registry)
        try other.close()
        try map.close()
        let file = try MemoryMappedFile.createFromFile(
            path: directory.file("file-\(tag)"), mode: .createNew, capacity: 16384, name: "file-\(tag)",
            regionOffset: 4096,
            regionLength: 4096, registry: registry)
        var region = try file.makeViewAccessor()
        region.write(UInt64(7), at: 0)
        try region.close()
        try file.close()
        let mutex = try NamedMutex(name: "mutex-\(tag)", registry: registry)
        try mutex.close()
    }

    @Test("every failing call, once or from then on, is an error, and leaves no live name and no shared memory behind")
    func sweep() throws {
        let registry = try Registry.open(directory: directory.file("registry"))
        let counts = try FaultInjection.run(nil) { try workload(registry, "dry") }.counts
        print(
            "registry fault injection: calls in one run: \(counts.filter { $0.value > 0 }.map { "\($0.key) \($0.value)" }.sorted())"
        )
        #expect(counts[.lmdbCommit, default: 0] >= 6 && counts[.mmap, default: 0] >= 3)
        var cases = 0
        let objectsBefore = Set(run(["/bin/ls", "/dev/shm"]).1.split(separator: "\n"))
        for call in FaultInjection.Call.allCases {
            for failAt in stride(from: 1, through: counts[call, default: 0], by: 1) {
                for persistent in [false, true] {
                    let tag = "\(call.rawValue)-\(failAt)-\(persistent)"
                    var thrown: (any Error)?
                    let failures = FaultInjection.run(
                        FaultInjection.Plan(call: call, failAt: failAt, persistent: persistent)
                    ) {
                        do { try workload(registry, tag) } catch { thrown = error }
                    }.failures
                    #expect(failures >= 1)
                    #expect(
                        thrown is RegistryError || thrown is MappedFileError,
                        "\(call) #\(failAt)\(persistent ? "+" : ""): \(String(describing: thrown))")
                    // A failed close is retried by the process's next registry operation.
                    _ = try registry.collectGarbage()
                    let left = try liveNames(registry).filter { $0.hasSuffix(tag) }
                    #expect(left.isEmpty, "\(call) #\(failAt)\(persistent ? "+" : ""): names left alive: \(left)")
                    cases += 1
                }
            }
        }
        // Nothing this process created is left in /dev/shm once the names are gone.
        _ = try registry.collectGarbage()
        let leaked = try registry.entries().filter { $0.kind != .file }.map(\.object)
        #expect(leaked.isEmpty, "entries left: \(leaked)")
        // And no shared-memory object of this registry is left behind, named or not (objects carry
        // their registry's tag, so other tests running at the same time do not count).
        let created = run(["/bin/ls", "/dev/shm"]).1.split(separator: "\n")
            .filter { !objectsBefore.contains($0) && $0.hasPrefix("mapped-records.\(getpid()).\(registry.objectTag).") }
        #expect(created.isEmpty, "orphaned shared-memory objects: \(created)")
        #expect(cases >= 20)
    }
}
