import MemoryMappedFiles

/// An event that processes share by name; .NET's named `EventWaitHandle`.
///
/// ``set()`` signals it; `wait(timeout:)` waits until it is signalled. An **auto-reset**
/// event releases one waiter per `set()` and returns to unsignalled as that waiter goes
/// (.NET's `AutoResetEvent`); a **manual-reset** event stays signalled, releasing every
/// waiter, until ``reset()`` (.NET's `ManualResetEvent`). Setting a signalled event does nothing.
///
/// It is a futex word in a small shared-memory object that the registry names, so waiting
/// costs no CPU and waking takes tens of microseconds. Like maps and mutexes, the name goes
/// away after its last user closes it or dies. Crash rules: a waiter that dies changes nothing;
/// a setter that dies between storing the signal and waking the sleepers leaves them asleep for
/// at most one second (they re-check in slices of 1 s), never past their own timeout.
///
/// ```swift
/// let ready = try NamedEvent(name: "ready", mode: .manualReset)
/// // another process
/// let same = try NamedEvent.openExisting(name: "ready")
/// same.set()
/// // here
/// ready.wait()  // or: await ready.wait(timeout: .seconds(1))
/// ```
public final class NamedEvent: @unchecked Sendable {
    // SAFETY (Sendable): every access to the shared word is atomic; the view is never remapped.

    /// How a signalled event returns to unsignalled; .NET's `EventResetMode`.
    public enum ResetMode: UInt32, Sendable, Hashable {
        /// One waiter goes per `set()`, and takes the signal with it.
        case autoReset = 1
        /// The signal stays, releasing every waiter, until `reset()`.
        case manualReset = 2
    }

    /// The event's name.
    public let name: String
    /// Whether this call created the event (.NET's `createdNew`).
    public let createdNew: Bool
    /// Its reset mode: the creator's, whatever a later opener asked for (as in .NET).
    public let mode: ResetMode
    private let named: NamedMemoryMappedFile
    private let memory: EventMemory

    // The object: u32 state at 0 (0 unsignalled, 1 signalled), u32 mode at 4.
    private static let objectSize = 64
    private static let stateOffset = 0
    private static let modeOffset = 4
    /// The longest sleep between checks of the state (the crash rule above).
    private static let slice = Duration.seconds(1)

    private final class EventMemory: Sendable {
        let view: MappedViewAccessor
        init(view: consuming MappedViewAccessor) { self.view = view }
    }

    private init(name: String, object: consuming SmallNamedObject) {
        self.name = name
        self.createdNew = object.createdNew
        let view = object.view
        self.mode = ResetMode(rawValue: view.atomicLoad(UInt32.self, at: Self.modeOffset)) ?? .manualReset
        self.named = object.named
        self.memory = EventMemory(view: view)
    }

    /// Opens the event with this name, or creates it; .NET's
    /// `new EventWaitHandle(initialState, mode, name, out createdNew)`.
    /// - Parameters:
    ///   - name: The event's name in the registry.
    ///   - registry: The registry; the default registry if nil.
    ///   - mode: The reset mode, if this call creates it; an existing event keeps its own.
    ///   - initiallySignaled: Whether it starts signalled, if this call creates it.
    public convenience init(
        name: String, mode: ResetMode, initiallySignaled: Bool = false, registry: Registry? = nil
    ) throws(RegistryError) {
        let object = unsafe try SmallNamedObject.openOrCreate(
            name, kind: .event, size: Self.objectSize, mustCreate: false, registry: registry, operation: "NamedEvent"
        ) { bytes in
            unsafe bytes.storeBytes(of: initiallySignaled ? 1 : 0, toByteOffset: Self.stateOffset, as: UInt32.self)
            unsafe bytes.storeBytes(of: mode.rawValue, toByteOffset: Self.modeOffset, as: UInt32.self)
        }
        self.init(name: name, object: object)
    }

    /// Opens an existing event; .NET's `EventWaitHandle.OpenExisting`. Throws `notFound` if
    /// there is none, `wrongKind` if the name belongs to a map or a mutex.
    public static func openExisting(name: String, registry: Registry? = nil) throws(RegistryError) -> NamedEvent {
        let object = try SmallNamedObject.openExisting(
            name, kind: .event, size: objectSize, registry: registry, operation: "NamedEvent.openExisting")
        return NamedEvent(name: name, object: object)
    }

    /// Whether the event is signalled now.
    public var isSignaled: Bool { memory.view.atomicLoad(UInt32.self, at: Self.stateOffset) == 1 }

    /// Signals the event: wakes one waiter (auto-reset) or every waiter (manual-reset); .NET's `Set()`.
    public func set() {
        memory.view.atomicStore(1, at: Self.stateOffset)
        memory.view.wakeWaiters(onWordAt: Self.stateOffset, count: mode == .autoReset ? 1 : Int.max)
    }

    /// Returns the event to unsignalled; .NET's `Reset()`.
    public func reset() {
        memory.view.atomicStore(0, at: Self.stateOffset)
    }

    /// Takes the signal if it is there: an auto-reset event's is consumed.
    private func takeSignal() -> Bool {
        switch mode {
        case .autoReset: return memory.view.compareExchange(1, 0, at: Self.stateOffset) == 1
        case .manualReset: return memory.view.atomicLoad(UInt32.self, at: Self.stateOffset) == 1
        }
    }

    /// An auto-reset event's waiter that gives up passes a wake-up it may have absorbed on.
    private func passOnSignal() {
        if mode == .autoReset && isSignaled { memory.view.wakeWaiters(onWordAt: Self.stateOffset, count: 1) }
    }

    /// Waits until the event is signalled, at most `timeout` (nil: no limit); .NET's `WaitOne`.
    /// - Returns: whether it was signalled (false at the timeout).
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            if takeSignal() { return true }
            let remaining = deadline.map { clock.now.duration(to: $0) }
            if let remaining, remaining <= .zero {
                passOnSignal()
                return false
            }
            _ = memory.view.waitForWake(
                onWordAt: Self.stateOffset, whileEqualTo: 0, timeout: min(remaining ?? Self.slice, Self.slice))
        }
    }

    /// The same wait for Swift concurrency: it sleeps on a thread of its own, never on one of
    /// the cooperative pool's. Cancelling the task ends it within microseconds, returning false.
    @discardableResult
    public func wait(timeout: Duration? = nil) async -> Bool {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            if takeSignal() { return true }
            let remaining = deadline.map { clock.now.duration(to: $0) }
            if Task.isCancelled || (remaining.map { $0 <= .zero } ?? false) {
                passOnSignal()
                return false
            }
            _ = await memory.view.waitForWake(
                onWordAt: Self.stateOffset, whileEqualTo: 0, timeout: min(remaining ?? Self.slice, Self.slice))
        }
    }

    /// Releases the name: after its last user releases it, the name and its memory go away.
    /// This object keeps its mapping, so it stays usable until it is deinitialized.
    public func close() throws(RegistryError) {
        try named.membership.release()
    }
}
