import Glibc
import MappedRegistry
import MemoryMappedFiles
import TestSupport
import Testing

/// Named events (.NET's EventWaitHandle), between real processes.
@Suite("Named events: auto and manual reset across processes", .timeLimit(.minutes(3)))
struct NamedEventTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }
    func registry() throws -> Registry { try Registry.open(directory: registryPath) }

    /// Waiter processes on `name`, each reporting "waiting" before it sleeps.
    func waiters(_ count: Int, on name: String, timeoutMilliseconds: Int = 20_000) -> [ChildProcess] {
        let children = (0..<count).map { _ in
            ChildProcess(helper("event-wait", registryPath, name, "\(timeoutMilliseconds)"))
        }
        for child in children { #expect(child.readLine() == "waiting") }
        usleep(100_000)  // they are asleep on the word
        return children
    }

    /// Whether a child has printed a line within `milliseconds` (poll on its pipe).
    func answers(_ child: ChildProcess, within milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: child.outputDescriptor, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) == 1
    }

    @Test("auto-reset: each set() releases exactly one waiting process, and the signal goes with it")
    func autoReset() throws {
        let registry = try registry()
        let event = try NamedEvent(name: "auto", mode: .autoReset, registry: registry)
        #expect(event.createdNew)
        let children = waiters(2, on: "auto")
        event.set()
        var first: Int?
        for _ in 0..<100 where first == nil { first = children.firstIndex { answers($0, within: 50) } }
        #expect(first != nil)
        guard let first else { return }
        #expect(children[first].readLine() == "signaled")
        let other = children[1 - first]
        #expect(!answers(other, within: 300), "one set() released two waiters")
        #expect(!event.isSignaled)  // the waiter took the signal
        event.set()
        #expect(other.readLine() == "signaled")
        for child in children { #expect(child.wait() == .exited(0)) }
        try event.close()
    }

    @Test("manual-reset: one set() releases every waiting process and stays until reset()")
    func manualReset() throws {
        let registry = try registry()
        let event = try NamedEvent(name: "manual", mode: .manualReset, registry: registry)
        let children = waiters(3, on: "manual")
        let (end, output) = run(helper("event-set", registryPath, "manual"))  // set by another process
        #expect(end == .exited(0) && output == "set")
        for child in children {
            #expect(child.readLine() == "signaled")
            #expect(child.wait() == .exited(0))
        }
        #expect(event.isSignaled)
        #expect(event.wait(timeout: .zero))
        event.reset()
        #expect(!event.isSignaled)
        let started = ContinuousClock.now
        #expect(!event.wait(timeout: .milliseconds(100)))
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        try event.close()
    }

    @Test("an opener gets the creator's mode and state; a name of another kind is wrongKind")
    func openingAndKinds() throws {
        let registry = try registry()
        let event = try NamedEvent(name: "e", mode: .manualReset, initiallySignaled: true, registry: registry)
        let again = try NamedEvent(name: "e", mode: .autoReset, registry: registry)
        #expect(!again.createdNew)
        #expect(again.mode == .manualReset)
        #expect(again.isSignaled)
        let mutex = try NamedMutex(name: "m", registry: registry)
        #expect(registryError { try NamedEvent.openExisting(name: "m", registry: registry) }?.code == .wrongKind)
        #expect(registryError { try MemoryMappedFile.openExisting(name: "e", registry: registry) }?.code == .wrongKind)
        #expect(registryError { try NamedEvent.openExisting(name: "none", registry: registry) }?.code == .notFound)
        try mutex.close()
        try again.close()
        try event.close()
        // The last close removed the name.
        #expect(registryError { try NamedEvent.openExisting(name: "e", registry: registry) }?.code == .notFound)
    }

    @Test("a waiter killed with -9 changes nothing; the name outlives it while others hold it")
    func crashedWaiter() throws {
        let registry = try registry()
        let event = try NamedEvent(name: "crash", mode: .autoReset, registry: registry)
        let doomed = waiters(1, on: "crash")[0]
        kill(doomed.pid, SIGKILL)
        #expect(doomed.wait() == .signaled(SIGKILL))
        let survivor = waiters(1, on: "crash")[0]
        event.set()
        #expect(survivor.readLine() == "signaled")
        #expect(survivor.wait() == .exited(0))
        try event.close()
    }

    @Test("async wait: a set() from another process resumes it; cancellation ends it at once")
    func asyncWait() async throws {
        let registry = try registry()
        let event = try NamedEvent(name: "async", mode: .autoReset, registry: registry)
        let waiter = Task { await event.wait(timeout: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(100))
        let (end, _) = run(helper("event-set", registryPath, "async"))
        #expect(end == .exited(0))
        #expect(await waiter.value)

        let idle = Task { await event.wait() }
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = ContinuousClock.now
        idle.cancel()
        #expect(await idle.value == false)
        let took = ContinuousClock.now - cancelled
        print("NamedEvent.wait ended \(took) after cancellation")
        #expect(took < .milliseconds(500))  // see NotificationTests.asyncUpdates: the pool may be busy
        try event.close()
    }
}
