import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@testable import MappedRegistry

/// Holders kept by the kernel (issue #29): opening and closing a held name writes nothing, a
/// process's handles share one hold, and joiners racing the last closer never get a removed map.
@Suite("Registry holders: slot locks instead of a holder list", .timeLimit(.minutes(3)))
final class RegistryHoldersTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }
    func registry() throws -> Registry { try Registry.open(directory: registryPath) }

    deinit { _ = try? Registry.open(directory: registryPath).collectGarbage() }

    @Test("openExisting and close of a name another process holds commit no LMDB transaction")
    func joiningWritesNothing() throws {
        let registry = try registry()
        let holder = ChildProcess(helper("named-hold", registryPath, "held", "4096"))
        #expect(holder.readLine()?.hasPrefix("holding ") == true)
        let before = registry.environment.lastTransactionID()
        for _ in 0..<100 {
            let map = try MemoryMappedFile.openExisting(name: "held", registry: registry)
            #expect(map.capacity == 4096)
            try map.close()
        }
        #expect(registry.environment.lastTransactionID() == before, "opening a held name wrote to the database")
        // The last holder's close is the one that writes: the name goes.
        holder.writeLine("close")
        #expect(holder.readLine() == "closed")
        holder.wait()
        #expect(registry.environment.lastTransactionID() == before + 1)
        #expect(try registry.entry(named: "held") == nil)
    }

    @Test("a process's handles share one hold: the name lives until the last of them closes")
    func handlesShareOneHold() throws {
        let registry = try registry()
        let first = try MemoryMappedFile.createNew(name: "twice", capacity: 4096, registry: registry)
        let path = first.map.path
        let object = try #require(path)
        let second = try MemoryMappedFile.openExisting(name: "twice", registry: registry)
        let entry = try #require(try registry.entry(named: "twice"))
        #expect(
            registry.holders(of: entry) == RegistryHolders(handlesInThisProcess: 2, otherProcesses: 0, isHeld: true))
        try first.close()
        #expect(registry.holders(of: entry).handlesInThisProcess == 1)
        #expect(try registry.entry(named: "twice") != nil && fileExists(object))
        try second.close()
        #expect(try registry.entry(named: "twice") == nil)
        #expect(!fileExists(object), "the last close did not unlink the shared memory")
        #expect(!registry.holders(of: entry).isHeld)
    }

    @Test("holders(of:) counts the other processes that hold a name, as the kernel's lock table shows")
    func holdersCountsProcesses() throws {
        let registry = try registry()
        let children = (0..<2).map { _ in ChildProcess(helper("named-hold", registryPath, "counted", "4096")) }
        for child in children { #expect(child.readLine()?.hasPrefix("holding ") == true) }
        let entry = try #require(try registry.entry(named: "counted"))
        #expect(
            registry.holders(of: entry) == RegistryHolders(handlesInThisProcess: 0, otherProcesses: 2, isHeld: true))
        let mine = try MemoryMappedFile.openExisting(name: "counted", registry: registry)
        #expect(
            registry.holders(of: entry) == RegistryHolders(handlesInThisProcess: 1, otherProcesses: 2, isHeld: true))
        for child in children {
            child.writeLine("close")
            #expect(child.readLine() == "closed")
            child.wait()
        }
        #expect(registry.holders(of: entry).otherProcesses == 0 && registry.holders(of: entry).isHeld)
        try mine.close()
        #expect(try registry.entry(named: "counted") == nil)
    }

    @Test("joiners racing the last closer get the live map or notFound, never a removed one; nothing leaks")
    func joinersRaceTheLastCloser() throws {
        let registry = try registry()
        var opened = 0, notFound = 0
        for round in 0..<12 {
            let value = 1000 + round
            let map = try MemoryMappedFile.createNew(name: "race", capacity: 4096, registry: registry)
            let path = map.map.path
            let object = try #require(path)
            var view = try map.makeViewAccessor()
            view.write(UInt64(value), at: 0)
            try view.close()
            let joiners = (0..<3).map { _ in
                ChildProcess(helper("named-open-close", registryPath, "race", "300", "\(value)"))
            }
            usleep(UInt32.random(in: 0...80_000))
            try map.close()  // the joiners may keep the name alive a while longer, or find it gone
            for joiner in joiners {
                let words = (joiner.readLine() ?? "").split(separator: " ")
                #expect(words.count == 6 && words[5] == "0", "a joiner read a map that was not the live one: \(words)")
                opened += Int(words.count == 6 ? words[1] : "0") ?? 0
                notFound += Int(words.count == 6 ? words[3] : "0") ?? 0
                #expect(joiner.wait() == .exited(0))
            }
            #expect(try registry.entry(named: "race") == nil, "round \(round): the name outlived its holders")
            #expect(!fileExists(object), "round \(round): the shared memory outlived its holders")
        }
        #expect(opened + notFound == 12 * 3 * 300)
        #expect(opened > 0 && notFound > 0, "the race was not run: \(opened) opened, \(notFound) not found")
    }
}
