import CLMDB
import Glibc
import Synchronization

#if MAPPED_RECORDS_FAULT_INJECTION
import MemoryMappedFiles
#endif

/// One LMDB environment, opened once per directory per process (LMDB forbids opening it
/// twice). Every transaction in this process runs under one lock: they are short and
/// synchronous, never span an `await`, and resizing the map needs no other open transaction.
@safe final class LMDBEnvironment: @unchecked Sendable {
    // SAFETY (Sendable): `environment` is used only under `lock`.
    let directory: String
    private let environment: OpaquePointer
    private let lock: Mutex<Int>  // guards every transaction; holds the current map size

    private static let opened = Mutex<[String: LMDBEnvironment]>([:])

    /// The environment in `directory`, opening it on first use.
    /// `directory` is the path LMDB opens; `shownAs` is what errors name (and the key that
    /// makes it one environment per directory).
    static func shared(
        directory: String, shownAs: String, initialMapSize: Int = 16 << 20
    ) throws(RegistryError) -> LMDBEnvironment {
        let result: Result<LMDBEnvironment, RegistryError> = opened.withLock { environments in
            if let existing = environments[shownAs] { return .success(existing) }
            do throws(RegistryError) {
                let environment = try LMDBEnvironment(directory: directory, shownAs: shownAs, mapSize: initialMapSize)
                environments[shownAs] = environment
                return .success(environment)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(directory openedPath: String, shownAs directory: String, mapSize: Int) throws(RegistryError) {
        self.directory = directory
        self.lock = Mutex(mapSize)
        var handle: OpaquePointer?
        unsafe try Self.check(mdb_env_create(&handle), systemCall: "mdb_env_create", path: directory)
        guard let handle = unsafe handle else {
            throw RegistryError(
                .ioError, operation: "openRegistry", path: directory, message: "mdb_env_create returned nothing")
        }
        do throws(RegistryError) {
            unsafe try Self.check(
                mdb_env_set_mapsize(handle, mapSize), systemCall: "mdb_env_set_mapsize", path: directory)
            // MDB_NOTLS: read transactions are not tied to a thread, so Swift tasks may hop threads.
            // MDB_NOSYNC: commits reach the page cache, which every process shares; entries describe
            // running processes and live in a per-boot directory, so nothing needs to survive a power loss.
            let flags = UInt32(MDB_NOTLS) | UInt32(MDB_NOSYNC)
            unsafe try Self.check(
                mdb_env_open(handle, openedPath, flags, 0o600), systemCall: "mdb_env_open", path: directory)
        } catch {
            unsafe mdb_env_close(handle)
            throw error
        }
        unsafe environment = unsafe handle
        var dead: Int32 = 0
        _ = unsafe mdb_reader_check(handle, &dead)  // clear reader slots of dead processes
    }

    /// The identifier of the environment's last committed write transaction: it grows by one per
    /// commit in any process (tests use it to show that an operation wrote nothing).
    func lastTransactionID() -> Int {
        var information = unsafe MDB_envinfo()
        unsafe mdb_env_info(environment, &information)
        return unsafe information.me_last_txnid
    }

    /// Runs `body` in a read transaction.
    func read<Result>(_ body: (Transaction) throws(RegistryError) -> Result) throws(RegistryError) -> Result {
        try transaction(readOnly: true, body)
    }

    /// Runs `body` in a write transaction and commits it; if the map is full, grows it and
    /// runs `body` again (so `body` must only act through the transaction until it commits).
    func write<Result>(_ body: (Transaction) throws(RegistryError) -> Result) throws(RegistryError) -> Result {
        try transaction(readOnly: false, body)
    }

    private func transaction<Result>(
        readOnly: Bool, _ body: (Transaction) throws(RegistryError) -> Result
    ) throws(RegistryError) -> Result {
        let outcome: Swift.Result<Result, RegistryError> = lock.withLock { mapSize in
            // Another process may have grown the map: adopt its size (0 means "the file's").
            if !readOnly { _ = unsafe mdb_env_set_mapsize(environment, 0) }
            while true {
                var handle: OpaquePointer?
                let begin = unsafe mdb_txn_begin(environment, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &handle)
                if begin == MDB_MAP_RESIZED {
                    // Another process grew the map past ours (LMDB's documented case): adopt its
                    // size, which is safe here since no transaction of this process is open.
                    let adopted = unsafe mdb_env_set_mapsize(environment, 0)
                    guard adopted == 0 else {
                        return .failure(Self.error(adopted, systemCall: "mdb_env_set_mapsize", path: directory))
                    }
                    continue
                }
                guard begin == 0, let handle = unsafe handle else {
                    return .failure(Self.error(begin, systemCall: "mdb_txn_begin", path: directory))
                }
                var database: MDB_dbi = 0
                let opened = unsafe mdb_dbi_open(handle, nil, 0, &database)
                guard opened == 0 else {
                    unsafe mdb_txn_abort(handle)
                    return .failure(Self.error(opened, systemCall: "mdb_dbi_open", path: directory))
                }
                let transaction = unsafe Transaction(handle: handle, database: database, path: directory)
                do throws(RegistryError) {
                    let result = try body(transaction)
                    if readOnly {
                        unsafe mdb_txn_abort(handle)
                    } else {
                        unsafe try Self.check(
                            injectedCommitFailure(aborting: handle) ?? mdb_txn_commit(handle),
                            systemCall: "mdb_txn_commit",
                            path: directory)
                    }
                    return .success(result)
                } catch  where error.lmdbCode == MDB_MAP_FULL {
                    if error.systemCall != "mdb_txn_commit" { unsafe mdb_txn_abort(handle) }
                    var information = unsafe MDB_envinfo()
                    unsafe mdb_env_info(environment, &information)
                    mapSize = unsafe max(mapSize, information.me_mapsize) * 2
                    let resized = unsafe mdb_env_set_mapsize(environment, mapSize)
                    guard resized == 0 else {
                        return .failure(Self.error(resized, systemCall: "mdb_env_set_mapsize", path: directory))
                    }
                } catch {
                    if error.systemCall != "mdb_txn_commit" { unsafe mdb_txn_abort(handle) }
                    return .failure(error)
                }
            }
        }
        return try outcome.get()
    }

    static func check(_ result: Int32, systemCall: String, path: String) throws(RegistryError) {
        guard result == 0 else { throw error(result, systemCall: systemCall, path: path) }
    }

    /// The registry error for an LMDB function's result: LMDB passes an errno on as it is
    /// (positive) and has its own codes below zero; the error keeps the two apart.
    static func error(_ result: Int32, systemCall: String, path: String) -> RegistryError {
        let code: RegistryError.Code
        switch result {
        case EACCES, EPERM, EROFS: code = .permissionDenied
        case MDB_INVALID, MDB_VERSION_MISMATCH, MDB_CORRUPTED, MDB_PAGE_NOTFOUND: code = .corrupt
        case ENOSPC: code = .noSpace
        case ENOENT: code = .notFound
        default: code = .ioError
        }
        let text = unsafe mdb_strerror(result).map { unsafe String(cString: $0) } ?? "LMDB error \(result)"
        let message = code == .corrupt ? "the registry's files are damaged or not an LMDB environment: \(text)" : text
        let isErrno = result > 0
        return RegistryError(
            code, operation: "registry", path: path, systemCall: systemCall, errno: isErrno ? result : nil,
            lmdbCode: isErrno ? nil : result, message: message)
    }
}

/// A transaction on the registry's main database.
@safe struct Transaction {
    let handle: OpaquePointer
    let database: MDB_dbi
    let path: String

    /// The value stored under `key`, or nil.
    func get(_ key: [UInt8]) throws(RegistryError) -> [UInt8]? {
        var keyBytes = key
        var value = unsafe MDB_val()
        let result = unsafe keyBytes.withUnsafeMutableBytes { keyBuffer in
            var keyValue = unsafe MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
            return unsafe mdb_get(handle, database, &keyValue, &value)
        }
        if result == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(result, systemCall: "mdb_get", path: path)
        return unsafe Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }

    /// Stores `value` under `key`.
    func put(_ key: [UInt8], _ value: [UInt8]) throws(RegistryError) {
        var keyBytes = key, valueBytes = value
        let result = unsafe keyBytes.withUnsafeMutableBytes { keyBuffer in
            unsafe valueBytes.withUnsafeMutableBytes { valueBuffer in
                var keyValue = unsafe MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
                var dataValue = unsafe MDB_val(mv_size: valueBuffer.count, mv_data: valueBuffer.baseAddress)
                return unsafe mdb_put(handle, database, &keyValue, &dataValue, 0)
            }
        }
        try LMDBEnvironment.check(result, systemCall: "mdb_put", path: path)
    }

    /// Removes `key`, if present.
    func delete(_ key: [UInt8]) throws(RegistryError) {
        var keyBytes = key
        let result = unsafe keyBytes.withUnsafeMutableBytes { keyBuffer in
            var keyValue = unsafe MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
            return unsafe mdb_del(handle, database, &keyValue, nil)
        }
        guard result == 0 || result == MDB_NOTFOUND else {
            throw LMDBEnvironment.error(result, systemCall: "mdb_del", path: path)
        }
    }

    /// Every key and value, in key order.
    func all() throws(RegistryError) -> [(key: [UInt8], value: [UInt8])] {
        var cursor: OpaquePointer?
        unsafe try LMDBEnvironment.check(
            mdb_cursor_open(handle, database, &cursor), systemCall: "mdb_cursor_open", path: path)
        defer { unsafe mdb_cursor_close(cursor) }
        var pairs: [(key: [UInt8], value: [UInt8])] = []
        var key = unsafe MDB_val(), value = unsafe MDB_val()
        var operation = MDB_FIRST
        while true {
            let result = unsafe mdb_cursor_get(cursor, &key, &value, operation)
            if result == MDB_NOTFOUND { break }
            try LMDBEnvironment.check(result, systemCall: "mdb_cursor_get", path: path)
            unsafe pairs.append(
                (
                    Array(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size)),
                    Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
                ))
            operation = MDB_NEXT
        }
        return pairs
    }
}

/// A test's injected failure of the LMDB commit (MemoryMappedFiles' FaultInjection), or nil.
/// An injected failure frees the transaction, as a failed `mdb_txn_commit` does.
private func injectedCommitFailure(aborting handle: OpaquePointer) -> Int32? {
    #if MAPPED_RECORDS_FAULT_INJECTION
    guard let injected = FaultInjection.injectedFailure(.lmdbCommit) else { return nil }
    unsafe mdb_txn_abort(handle)
    return injected
    #else
    return nil
    #endif
}
