// A series of tables: the writer's side. Opening (and completing a roll a crashed writer left
// half done), appending, rolling to the next file, retention. Reading is in TableSeries+Reading.

import Glibc

/// A directory of ordinary tables with one schema that reads as one sequence: a journal that
/// rolls to a new file by record count, size or UTC time, and keeps only the files its retention
/// allows (docs/FORMAT.md, "Series").
///
/// ```swift
/// let series = try TableSeries<Trade>.open(directory: "trades", access: .readWrite,
///                                          roll: .records(1_000_000), retention: .files(7))
/// try series.append(trade)
/// try series.commit()
/// try series.close()
/// ```
///
/// Every file stays a table that `RecordTable`, `mrec` and the Python package open as usual.
/// The writer fills the newest file; when the roll rule says so it creates the next file, then
/// *seals* the full one (a mark in its live area naming the next), so a follower crosses from
/// one file to the next without a gap or a duplicate. A writer killed at any step of a roll
/// leaves a series that the next writer completes.
///
/// `access` is as for one table: `.readOnly` (the default) reads and follows; `.readWrite` is
/// the one writer; `.sharedAppend` lets several processes append, each roll made by whichever
/// appender finds the file full, under the file's appender lock.
///
/// Like a table, a series handle is used from one task at a time; ``updates(from:)`` is `Sendable`.
public final class TableSeries<Record: MappedRecord> {
    /// The series' directory.
    public let directory: String
    /// How this handle opened the series.
    public let access: TableAccess
    /// When this writer rolls to the next file.
    public let roll: SeriesRoll
    /// Which old files this writer removes after a roll.
    public let retention: SeriesRetention
    /// The durability mode of each file this writer appends to.
    public let durability: Durability
    let files: SeriesDirectory

    /// A writer's file: the newest, which it appends to.
    var writing: RecordTable<Record>?
    /// Its number.
    var writingNumber = 0
    /// Its cycle's start, for the time-based rolls.
    var writingCycle: Int64?
    /// A writer's next file, made ahead of time (TableSeries+Standby.swift), and its number.
    var standby: RecordTable<Record>?
    var standbyNumber = 0
    /// A reader's file: the one it read last, kept open for the next read.
    var reading: RecordTable<Record>?
    var readingNumber = 0
    /// The file read before it, still open.
    var previous: RecordTable<Record>?
    var previousNumber = 0
    /// Files a follower finished reading, closed when it next waits.
    var finished: [RecordTable<Record>] = []
    /// A follower's next file, opened while it waits at the end of the one before.
    var lookahead: RecordTable<Record>?
    var lookaheadNumber = 0
    /// A full file a roll sealed, closed after the append that rolled.
    var retired: RecordTable<Record>?
    /// Whether the retention runs after the current append (a roll happened).
    var retentionDue = false
    /// Whether ``close()`` was called.
    public private(set) var isClosed = false

    /// How long an appender waits for a file that another process is creating.
    static var creationWait: Duration { .seconds(10) }

    private init(
        directory: String, access: TableAccess, roll: SeriesRoll, retention: SeriesRetention, durability: Durability
    ) {
        self.directory = directory
        self.access = access
        self.roll = roll
        self.retention = retention
        self.durability = durability
        self.files = SeriesDirectory(path: directory)
    }

    deinit {
        if !isClosed { try? close() }
    }

    /// Opens the series in `directory`.
    ///
    /// A writer (`.readWrite`, `.sharedAppend`) creates the directory and its first file if
    /// there are none, opens the newest file, and completes a roll that a crashed writer left
    /// half done (it seals the file before the newest, if it is not sealed). A reader needs the
    /// directory to exist; it may still be empty.
    /// - Parameters:
    ///   - directory: The series' directory.
    ///   - access: `.readOnly` (default), `.readWrite` (one writer) or `.sharedAppend` (several).
    ///   - roll: When the writer starts the next file (writers only).
    ///   - retention: Which files the writer removes after a roll (writers only).
    ///   - durability: The writer's durability mode for every file.
    /// - Throws: `writerActive` if another process writes the series and this one may not
    ///   join it; `invalidArgument` for a roll or retention that cannot work (a count below 1);
    ///   `schemaMismatch` if the newest file holds other records; or a file-system error.
    public static func open(
        directory: String, access: TableAccess = .readOnly, roll: SeriesRoll = .never,
        retention: SeriesRetention = .forever, durability: Durability = .batch
    ) throws(RecordTableError) -> TableSeries {
        try validate(roll: roll, retention: retention, directory: directory)
        let series = TableSeries(
            directory: directory, access: access, roll: roll, retention: retention, durability: durability)
        if access == .readOnly {
            _ = try series.files.numbers(operation: "open")  // the directory must exist and be readable
            return series
        }
        try series.files.makeIfMissing()
        try series.openNewest()
        return series
    }

    static func validate(roll: SeriesRoll, retention: SeriesRetention, directory: String) throws(RecordTableError) {
        func invalid(_ message: String) -> RecordTableError {
            RecordTableError(.invalidArgument, operation: "open", path: directory, message: message)
        }
        switch roll {
        case .records(let count) where count < 1: throw invalid("roll: .records(\(count)) must be at least 1")
        case .bytes(let bytes) where bytes < 1: throw invalid("roll: .bytes(\(bytes)) must be at least 1")
        default: break
        }
        switch retention {
        case .files(let count) where count < 1: throw invalid("retention: .files(\(count)) must keep at least 1")
        case .age(let age) where age <= .zero: throw invalid("retention: .age(\(age)) must be positive")
        default: break
        }
    }

    // MARK: Opening the newest file

    /// Opens the newest file for writing (creating file 1 in an empty directory), moving past
    /// a sealed one, and seals the one before it if a crashed roll left it unsealed.
    func openNewest() throws(RecordTableError) {
        let numbers = try files.numbers(operation: "open")
        if let current = try currentBeforeStandby(numbers) {
            // The newest file is a standby made ahead of time: append to the one before it.
            let (opened, number) = try openFollowingSeals(current, wait: Self.joiningWait)
            adopt(opened, number: number)
            return
        }
        let (opened, number) = try openFollowingSeals(numbers.last ?? 1, wait: Self.joiningWait)
        adopt(opened, number: number)
        if numbers.contains(number - 1) { try completeSeal(of: number - 1, next: number) }
    }

    /// Opens file `number` for writing, creating it if it is missing; if it is sealed, the file
    /// its seal names, and so on: other appenders may have rolled past it meanwhile.
    func openFollowingSeals(
        _ number: Int, wait: Duration? = creationWait
    ) throws(RecordTableError) -> (RecordTable<Record>, Int) {
        var number = number
        while true {
            do {
                return (try openForWriting(number, creating: true, wait: wait), number)
            } catch  where error.code == .sealed {
                let sealed = try RecordTable<Record>.open(path: files.filePath(number))
                defer { try? sealed.close() }
                guard let next = sealed.storage.sealedSuccessor(), next > number else { throw error }
                number = next
            }
        }
    }

    /// How long a shared appender that opens the series waits for an exclusive lock to go: a
    /// file another appender is creating is locked for microseconds; an exclusive writer's stays.
    static var joiningWait: Duration { .milliseconds(500) }

    /// Opens file `number` with this series' access, creating it first if `creating` and it is
    /// missing. An exclusive writer keeps the lock `create` took, so no other writer can slip
    /// in between; shared appenders create it, close it and open it shared.
    func openForWriting(
        _ number: Int, creating: Bool, wait: Duration? = creationWait
    ) throws(RecordTableError) -> RecordTable<Record> {
        let path = files.filePath(number)
        if creating {
            do {
                let created = try RecordTable<Record>.create(
                    path: path, durability: durability, metadata: seriesMetadata())
                if access == .readWrite { return created }
                try created.close()
            } catch  where error.code == .alreadyExists {
                // Made by a crashed roll, or by another appender: open it.
            }
        }
        return try RecordTable<Record>.open(
            path: path, access: access, durability: durability, waitForWriter: access == .sharedAppend ? wait : nil)
    }

    /// The metadata of a new file: when it was made, and its cycle for time-based rolls.
    func seriesMetadata() -> KeyValuePairs<String, String> {
        let now = SeriesFormat.now()
        if let cycle = roll.cycleSeconds {
            return [SeriesFormat.createdKey: String(now), SeriesFormat.cycleKey: String(now / cycle * cycle)]
        }
        return [SeriesFormat.createdKey: String(now)]
    }

    func adopt(_ table: RecordTable<Record>, number: Int) {
        writing = table
        writingNumber = number
        writingCycle = table.metadata.first { $0.key == SeriesFormat.cycleKey }.flatMap { Int64($0.value) }
    }

    /// Seals file `number` naming `next`, unless it is sealed already (a roll that a writer
    /// killed between creating the next file and sealing this one).
    func completeSeal(of number: Int, next: Int) throws(RecordTableError) {
        let previous: RecordTable<Record>
        do {
            let wait = access == .sharedAppend ? Self.creationWait : nil
            previous = try RecordTable<Record>.open(
                path: files.filePath(number), access: access, durability: durability, waitForWriter: wait)
        } catch  where error.code == .sealed || error.code == .notFound {
            return
        }
        defer { try? previous.close() }
        let storage = previous.storage
        if access == .sharedAppend {
            try storage.lockAppenders("open")
            defer { storage.unlockAppenders() }
            if storage.sealedSuccessor() == nil { try storage.seal(next: next) }
        } else {
            try storage.seal(next: next)
        }
    }

    // MARK: Appending

    /// Appends a record to the newest file, rolling first if the roll rule says so.
    /// - Complexity: As ``RecordTable/append(_:)``, plus a clock read for the time-based rolls;
    ///   a roll creates a file and seals one.
    public func append(_ record: Record) throws(RecordTableError) {
        try prepareAppend(1)
        try writing!.append(record)
    }

    /// Appends records to one file, contiguous and all-or-nothing for readers, rolling first
    /// if they would pass the roll rule.
    public func append(contentsOf records: Span<Record>) throws(RecordTableError) {
        guard !records.isEmpty else { return }
        try prepareAppend(records.count)
        try writing!.append(contentsOf: records)
    }

    /// Appends the records of an array; see ``append(contentsOf:)-(Span<Record>)``.
    public func append(contentsOf records: [Record]) throws(RecordTableError) {
        try append(contentsOf: records.span)
    }

    /// Makes the newest file the one to append `extra` records to: rolls if they would pass the
    /// rule, follows another appender's roll. A shared appender returns holding the file's
    /// appender lock, which the append that follows keeps and releases when it publishes.
    func prepareAppend(_ extra: Int) throws(RecordTableError) {
        precondition(!isClosed, "TableSeries: append on a closed series")
        precondition(access != .readOnly, "TableSeries: append on a series opened read-only")
        if _slowPath(retired != nil || retentionDue) { try finishRoll() }
        try prepareStandbyIfDue()
        while true {
            let table = writing!
            guard access == .sharedAppend else {
                if needsRoll(count: table.count, extra: extra, table: table) { try rollOver() }
                return
            }
            let storage = table.storage
            try storage.lockAppenders("append")
            do throws(RecordTableError) {
                try storage.catchUpWithAppenders(operation: "append")
                if let next = storage.sealedSuccessor() {
                    storage.unlockAppenders()
                    try moveOn(to: next)
                    continue
                }
                if unsafe needsRoll(count: storage.count, extra: extra, table: table) {
                    try rollOver()
                    continue
                }
            } catch {
                table.storage.unlockAppenders()
                throw error
            }
            return
        }
    }

    /// Whether `extra` more records go to the next file.
    func needsRoll(count: Int, extra: Int, table: RecordTable<Record>) -> Bool {
        switch roll {
        case .never: return false
        case .records(let limit): return count > 0 && count + extra > limit
        case .bytes(let limit):
            return count > 0 && table.storage.header.dataOffset + (count + extra) * table.storage.stride > limit
        case .hourly, .daily:
            let cycle = roll.cycleSeconds!
            let now = SeriesFormat.now()
            return writingCycle != now / cycle * cycle
        }
    }

    /// Rolls: creates (or opens) the next file, seals this one naming it, moves to it, applies
    /// the retention. A shared appender holds this file's appender lock throughout.
    func rollOver() throws(RecordTableError) {
        let current = writing!
        let next = writingNumber + 1
        let (successor, successorNumber) = try successorFile(next)
        CrashPoint.reached("roll-step-1")  // the next file exists; this one is not sealed
        do { try current.storage.seal(next: next) } catch {
            try? successor.close()
            throw error
        }
        CrashPoint.reached("roll-step-2")  // sealed; still open
        writing = nil
        // The full file closes, and the retention runs, at the next append (finishRoll): the
        // append that rolled publishes at once, and the follower it woke (which the kernel often
        // queues on this CPU) runs before tens of microseconds of unmapping.
        current.storage.unlockAppenders()
        try? retired?.close()
        retired = current
        adopt(successor, number: successorNumber)
        CrashPoint.reached("roll-step-3")  // moved on; the retention not applied
        retentionDue = true
    }

    /// At the append after the one that rolled (or at commit or close): closes the full file
    /// and applies the retention.
    @inline(never)
    func finishRoll() throws(RecordTableError) {
        let full = retired
        retired = nil
        try? full?.close()
        if retentionDue {
            retentionDue = false
            try applyRetention()
        }
    }

    /// File `next` open for writing: the standby if it is that file, else opened (or created),
    /// following seals.
    func successorFile(_ next: Int) throws(RecordTableError) -> (RecordTable<Record>, Int) {
        if let standing = takeStandby(next) { return standing }
        return try openFollowingSeals(next)
    }

    /// Another appender sealed this file: append to the next one.
    func moveOn(to next: Int) throws(RecordTableError) {
        let (successor, number) = try successorFile(next)
        let current = writing
        writing = nil
        try? current?.close()
        adopt(successor, number: number)
    }

    /// Removes the sealed files that the retention no longer keeps, oldest first.
    func applyRetention() throws(RecordTableError) {
        switch retention {
        case .forever: return
        case .files(let keep):
            for number in try files.numbers(operation: "retention") where number <= writingNumber - keep {
                try files.remove(number)
            }
        case .age(let age):
            let now = SeriesFormat.now()
            let numbers = try files.numbers(operation: "retention")
            for (position, number) in numbers.enumerated() where number < writingNumber {
                // A file ended when the next one was created.
                guard position + 1 < numbers.count, let ended = createdTime(of: numbers[position + 1]),
                    Duration.seconds(now - ended) > age
                else { break }
                try files.remove(number)
            }
        }
    }

    /// When file `number` was created (its metadata), or nil if it cannot be read.
    func createdTime(of number: Int) -> Int64? {
        guard let table = try? RecordTable<Record>.open(path: files.filePath(number)) else { return nil }
        defer { try? table.close() }
        return table.metadata.first { $0.key == SeriesFormat.createdKey }.flatMap { Int64($0.value) }
    }

    // MARK: Committing and closing

    /// Commits the newest file: what this process appended is durable, as ``Durability`` says.
    /// (A roll commits the file it seals.)
    public func commit() throws(RecordTableError) {
        precondition(!isClosed, "TableSeries: commit on a closed series")
        precondition(access != .readOnly, "TableSeries: commit on a series opened read-only")
        if retired != nil || retentionDue { try finishRoll() }
        try writing!.commit()
    }

    /// Commits (a writer) and closes the open files. Closing twice does nothing.
    public func close() throws(RecordTableError) {
        guard !isClosed else { return }
        isClosed = true
        let writer = writing, reader = reading, spare = standby, next = lookahead, full = retired
        retired = nil
        try? full?.close()
        if retentionDue {
            retentionDue = false
            try? applyRetention()
        }
        try? previous?.close()
        previous = nil
        closeFinished()
        writing = nil
        reading = nil
        standby = nil
        lookahead = nil
        try? reader?.close()
        try? next?.close()
        if let spare {
            // The exclusive writer's standby is still empty: it goes, so that the series ends
            // with the file appended to. Shared appenders leave it to the others.
            let removable = access == .readWrite && spare.count == 0 && spare.sealedSuccessor == nil
            try? spare.close()
            if removable { try? files.remove(standbyNumber) }
        }
        try writer?.close()
    }

    /// The number of the file a writer appends to (0 for a reader).
    public var currentFile: Int { writingNumber }
}
