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
/// Ownership belongs to a thread, as in .NET: unlock on the thread that locked. The mutex is
/// not recursive. Any process that opens the name can write the mutex's memory, so every status
/// pthread answers is checked: a mutex that another process damaged, or that cannot be made
/// consistent, is a thrown `RegistryError` (`corrupt`), never a trap. Like maps, the name goes
/// away after its last user.
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
            _ = unsafe pthread_mutex_unlock(mutex)  // it was free: give it back
        case EOWNERDEAD:
            if unsafe pthread_mutex_consistent(mutex) == 0 { _ = unsafe pthread_mutex_unlock(mutex) }
        default:
            break  // another thread or process holds it
        }
    }

    /// Opens the mutex with this name, or creates it; .NET's `new Mutex(initiallyOwned, name, out createdNew)`.
    /// - Parameters:
    ///   - name: The mutex's name in the registry.
    ///   - registry: The registry; the default registry if nil.
    ///   - initiallyOwned: Lock it at once, if this call creates it.
    public convenience init(name: String, initiallyOwned: Bool = false, registry: Registry? = nil) throws(RegistryError)
    {
        try self.init(name: name, mustCreate: false, registry: registry)
        if initiallyOwned && createdNew { _ = try lock() }
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
        ) { (bytes) throws(RegistryError) in
            var attributes = pthread_mutexattr_t()
            func check(_ status: Int32, _ call: String) throws(RegistryError) {
                guard status == 0 else {
                    throw RegistryError(
                        .ioError, operation: "NamedMutex", path: name, systemCall: call, errno: status,
                        message: "could not make the mutex (\(call) answered \(status))")
                }
            }
            try check(unsafe pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
            defer { _ = unsafe pthread_mutexattr_destroy(&attributes) }
            try check(
                unsafe pthread_mutexattr_setpshared(&attributes, Int32(PTHREAD_PROCESS_SHARED)),
                "pthread_mutexattr_setpshared")
            try check(
                unsafe pthread_mutexattr_setrobust(&attributes, Int32(PTHREAD_MUTEX_ROBUST)),
                "pthread_mutexattr_setrobust")
            try check(
                unsafe pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)),
                "pthread_mutexattr_settype")
            try check(
                unsafe pthread_mutex_init(
                    bytes.baseAddress!.bindMemory(to: pthread_mutex_t.self, capacity: 1), &attributes),
                "pthread_mutex_init")
        }
        self.init(name: name, createdNew: object.createdNew, named: object.named, view: object.view)
    }

    // MARK: Locking

    /// Waits for the mutex and takes it; .NET's `WaitOne()`.
    /// - Throws: `corrupt` if the mutex cannot be taken: this thread holds it already (it is not
    ///   recursive), or another process damaged its memory.
    @discardableResult
    public func lock() throws(RegistryError) -> LockResult {
        guard let result = try unsafe result(of: pthread_mutex_lock(mutex), operation: "lock") else {
            throw RegistryError(
                .corrupt, operation: "lock", path: name,
                message: "the mutex answered 'busy' to a waiting lock; another process damaged its memory")
        }
        return result
    }

    /// Takes the mutex if it is free; returns nil if another thread or process holds it.
    /// - Throws: as ``lock()``.
    public func tryLock() throws(RegistryError) -> LockResult? {
        try unsafe result(of: pthread_mutex_trylock(mutex), operation: "tryLock")
    }

    /// Waits at most `timeout` for the mutex; returns nil if it did not get it; .NET's `WaitOne(timeout)`.
    /// - Throws: as ``lock()``.
    public func lock(timeout: Duration) throws(RegistryError) -> LockResult? {
        var deadline = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &deadline)
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        return try unsafe result(of: pthread_mutex_timedlock(mutex, &deadline), operation: "lock(timeout:)")
    }

    /// Releases the mutex; .NET's `ReleaseMutex()`.
    /// - Throws: `corrupt` if this thread does not own it (.NET's `ApplicationException`), or
    ///   another process damaged its memory.
    public func unlock() throws(RegistryError) {
        let status = unsafe pthread_mutex_unlock(mutex)
        guard status == 0 else {
            throw RegistryError(
                .corrupt, operation: "unlock", path: name, systemCall: "pthread_mutex_unlock", errno: status,
                message: status == EPERM
                    ? "this thread does not own the mutex (or another process damaged its memory)"
                    : "the mutex's memory is damaged (pthread_mutex_unlock answered \(status))")
        }
    }

    /// Runs `body` holding the mutex. `body` learns whether a previous owner died holding it.
    /// - Throws: what `body` throws, or the `RegistryError` of taking or releasing the mutex.
    public func withLock<Result>(_ body: (LockResult) throws -> Result) throws -> Result {
        let how = try lock()
        let result: Swift.Result<Result, any Error>
        do { result = .success(try body(how)) } catch { result = .failure(error) }
        try unlock()
        return try result.get()
    }

    /// What a lock call's status means: taken (after a dead owner, made consistent again), not
    /// taken (busy, timed out), or an error for every other status.
    private func result(of status: Int32, operation: String) throws(RegistryError) -> LockResult? {
        func failure(_ message: String, errno: Int32) -> RegistryError {
            RegistryError(
                .corrupt, operation: operation, path: name, systemCall: "pthread_mutex_lock", errno: errno,
                message: message)
        }
        switch status {
        case 0: return .acquired
        case EOWNERDEAD:
            // The owner died holding it: take it over and make it usable again.
            let consistent = unsafe pthread_mutex_consistent(mutex)
            guard consistent == 0 else {
                _ = unsafe pthread_mutex_unlock(mutex)
                throw failure("the owner died holding it, and it could not be made consistent", errno: consistent)
            }
            return .acquiredAfterOwnerDied
        case EBUSY, ETIMEDOUT: return nil
        case EDEADLK:
            throw failure(
                "this thread holds it already (a NamedMutex is not recursive), or another process damaged its memory",
                errno: status)
        case ENOTRECOVERABLE:
            throw failure("an owner died holding it and the next one did not make it consistent", errno: status)
        default:
            throw failure("the mutex's memory is damaged (the lock answered \(status))", errno: status)
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
