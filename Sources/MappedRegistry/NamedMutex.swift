import Glibc
import MemoryMappedFiles
import Synchronization

/// A mutex that processes share by name; .NET's named `System.Threading.Mutex`.
///
/// It is a robust, process-shared, error-checking pthread mutex in a small shared-memory
/// object that the registry names. If its owner dies holding it, the next ``lock()`` gets it
/// **and** learns so (``LockResult/acquiredAfterOwnerDied``, .NET's `AbandonedMutexException`);
/// the mutex is made consistent again, so it never becomes unusable. Uncontended locking
/// stays in user space (a futex).
///
/// Ownership belongs to a thread, as in .NET: unlock on the thread that locked. Unlocking a
/// mutex this thread does not own traps. Like maps, the name goes away after its last user.
@safe public final class NamedMutex: @unchecked Sendable {
    // SAFETY (Sendable): the pthread mutex is itself the synchronization; the view is never remapped.

    /// How a lock was acquired.
    public enum LockResult: Sendable, Hashable {
        /// Normally.
        case acquired
        /// From an owner that died holding it: what it protects may be half-updated.
        case acquiredAfterOwnerDied
    }

    /// The mutex's name.
    public let name: String
    /// Whether this call created the mutex (.NET's `createdNew`).
    public let createdNew: Bool
    private let named: NamedMemoryMappedFile
    private let memory: MutexMemory
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    private static let objectSize = 64

    /// The mapping that holds the mutex, kept apart so that it can outlive this object.
    private final class MutexMemory: @unchecked Sendable {
        let view: MappedViewAccessor
        init(view: consuming MappedViewAccessor) { self.view = view }
    }

    /// Mappings of mutexes that were deinitialized while their thread owned them. They stay
    /// mapped until the process exits, so that the kernel can mark the mutex owner-dead when
    /// the owning thread ends (its robust list points into them).
    private static let abandoned = Mutex<[MutexMemory]>([])

    private init(
        name: String, createdNew: Bool, named: consuming NamedMemoryMappedFile, view: consuming MappedViewAccessor
    ) {
        self.name = name
        self.createdNew = createdNew
        // SAFETY: the view maps the whole object, which holds the mutex at offset 0; `memory`
        // keeps it mapped as long as self, and longer if the mutex is abandoned.
        unsafe self.mutex = unsafe view.withUnsafeMutableBytes {
            unsafe $0.baseAddress!.bindMemory(to: pthread_mutex_t.self, capacity: 1)
        }
        self.named = named
        self.memory = MutexMemory(view: view)
    }

    deinit {
        // An error-checking mutex answers EDEADLK to a trylock by its owner.
        switch unsafe pthread_mutex_trylock(mutex) {
        case EDEADLK:
            let memory = self.memory
            Self.abandoned.withLock { $0.append(memory) }
        case 0:
            unsafe pthread_mutex_unlock(mutex)  // it was free: give it back
        case EOWNERDEAD:
            unsafe pthread_mutex_consistent(mutex)
            unsafe pthread_mutex_unlock(mutex)
        default:
            break  // another thread or process holds it
        }
    }

    /// Opens the mutex with this name, or creates it; .NET's `new Mutex(initiallyOwned, name, out createdNew)`.
    /// - Parameter initiallyOwned: Lock it at once, if this call creates it.
    public convenience init(name: String, initiallyOwned: Bool = false, registry: Registry? = nil) throws(RegistryError)
    {
        try self.init(name: name, mustCreate: false, registry: registry)
        if initiallyOwned && createdNew { _ = lock() }
    }

    /// Opens an existing mutex; .NET's `Mutex.OpenExisting`. Throws `notFound` if there is none.
    public static func openExisting(name: String, registry: Registry? = nil) throws(RegistryError) -> NamedMutex {
        let object = try SmallNamedObject.openExisting(
            name, kind: .mutex, size: objectSize, registry: registry, operation: "NamedMutex.openExisting")
        return NamedMutex(name: name, createdNew: false, named: object.named, view: object.view)
    }

    private convenience init(name: String, mustCreate: Bool, registry: Registry?) throws(RegistryError) {
        let object = unsafe try SmallNamedObject.openOrCreate(
            name, kind: .mutex, size: Self.objectSize, mustCreate: mustCreate, registry: registry,
            operation: "NamedMutex"
        ) { bytes in
            var attributes = pthread_mutexattr_t()
            unsafe pthread_mutexattr_init(&attributes)
            unsafe pthread_mutexattr_setpshared(&attributes, Int32(PTHREAD_PROCESS_SHARED))
            unsafe pthread_mutexattr_setrobust(&attributes, Int32(PTHREAD_MUTEX_ROBUST))
            unsafe pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK))
            unsafe pthread_mutex_init(bytes.baseAddress!.bindMemory(to: pthread_mutex_t.self, capacity: 1), &attributes)
            unsafe pthread_mutexattr_destroy(&attributes)
        }
        self.init(name: name, createdNew: object.createdNew, named: object.named, view: object.view)
    }

    // MARK: Locking

    /// Waits for the mutex and takes it; .NET's `WaitOne()`.
    @discardableResult
    public func lock() -> LockResult {
        unsafe result(of: pthread_mutex_lock(mutex), operation: "lock")!
    }

    /// Takes the mutex if it is free; returns nil if another thread or process holds it.
    public func tryLock() -> LockResult? {
        unsafe result(of: pthread_mutex_trylock(mutex), operation: "tryLock")
    }

    /// Waits at most `timeout` for the mutex; returns nil if it did not get it; .NET's `WaitOne(timeout)`.
    public func lock(timeout: Duration) -> LockResult? {
        var deadline = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &deadline)
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        return unsafe result(of: pthread_mutex_timedlock(mutex, &deadline), operation: "lock(timeout:)")
    }

    /// Releases the mutex; .NET's `ReleaseMutex()`. Traps unless this thread owns it.
    public func unlock() {
        let status = unsafe pthread_mutex_unlock(mutex)
        precondition(status == 0, "NamedMutex '\(name)': unlock by a thread that does not own it")
    }

    /// Runs `body` holding the mutex. `body` learns whether a previous owner died holding it.
    public func withLock<Result, Failure: Error>(
        _ body: (LockResult) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let how = lock()
        defer { unlock() }
        return try body(how)
    }

    private func result(of status: Int32, operation: String) -> LockResult? {
        switch status {
        case 0: return .acquired
        case EOWNERDEAD:
            // The owner died holding it: take it over and make it usable again.
            unsafe pthread_mutex_consistent(mutex)
            return .acquiredAfterOwnerDied
        case EBUSY, ETIMEDOUT: return nil
        case EDEADLK: preconditionFailure("NamedMutex '\(name)': \(operation) by the thread that already owns it")
        default: preconditionFailure("NamedMutex '\(name)': \(operation) failed with \(status)")
        }
    }

    /// Releases the name: after its last user releases it, the name and its memory go away.
    /// This object keeps its mapping, so it stays usable until it is deinitialized.
    public func close() throws(RegistryError) {
        try named.membership.release()
    }
}

/// A view of a whole map, turning its error into a registry error.
func mappedView(
    _ map: borrowing MemoryMappedFile, operation: String, path: String
) throws(RegistryError) -> MappedViewAccessor {
    do {
        return try map.makeViewAccessor()
    } catch {
        throw RegistryError(error, operation: operation, path: path)
    }
}
