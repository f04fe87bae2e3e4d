// A series of tables: the reader's side. One sequence of records with a position (file, index):
// reading crosses from a sealed file to the one its seal names; waiting sleeps on the doorbell
// of the file being followed, and wakes when it is sealed.

extension TableSeries: SeriesWaiting {
    // MARK: Files and positions

    /// The numbers of the series' files, oldest first.
    public func fileNumbers() throws(RecordTableError) -> [Int] {
        try files.numbers(operation: "fileNumbers")
    }

    /// The path of file `number`.
    public func path(ofFile number: Int) -> String { files.filePath(number) }

    /// The first record of the oldest file the series keeps (file 1 of an empty series).
    public func startPosition() throws(RecordTableError) -> SeriesPosition {
        SeriesPosition(file: try fileNumbers().first ?? 1, index: 0)
    }

    /// Just past the last record of the newest file.
    public func endPosition() throws(RecordTableError) -> SeriesPosition {
        guard let last = try fileNumbers().last else { return SeriesPosition(file: 1, index: 0) }
        guard let table = try readable(last) else { return SeriesPosition(file: last, index: 0) }
        return SeriesPosition(file: last, index: try table.refresh())
    }

    /// The records of every file the series keeps now.
    /// - Complexity: O(*f*) in the files: one open (or refresh) of each.
    public func count() throws(RecordTableError) -> Int {
        var total = 0
        for number in try fileNumbers() {
            total += try readable(number).map { table throws(RecordTableError) in try table.refresh() } ?? 0
        }
        return total
    }

    // MARK: Reading

    /// Copies up to `maxCount` records from `position` on, crossing from each sealed file to the
    /// next, and moves `position` past them. Returns fewer (or none) at the end of the series.
    /// - Throws: `fellBehind` if the retention removed a file the position needs;
    ///   `invalidArgument` for a position past the end of a sealed file.
    /// - Complexity: O(*n*) in the records copied, plus an open per file crossed.
    public func read(from position: inout SeriesPosition, maxCount: Int = 65_536) throws(RecordTableError) -> [Record] {
        precondition(maxCount >= 0, "TableSeries: read with a negative maxCount")
        var records: [Record] = []
        while records.count < maxCount {
            guard let table = try readable(position.file) else { break }
            // The seal first, then the count: a file is sealed after its last publish, so a
            // count read after the seal is the file's last.
            let next = table.storage.sealedSuccessor()
            let count = try table.storage.refresh(requiringName: false)
            if position.index < count {
                let take = min(count - position.index, maxCount - records.count)
                records.reserveCapacity(records.count + take)
                for index in position.index..<position.index + take { records.append(table[index]) }
                position.index += take
                continue
            }
            guard let next else { break }
            guard position.index == count else {
                throw RecordTableError(
                    .invalidArgument, operation: "read", path: table.path,
                    message: "the position \(position) lies past the \(count) records of this sealed file")
            }
            position = SeriesPosition(file: next, index: 0)
        }
        return records
    }

    /// Waits until records lie past `position`, or until `timeout`; returns the position just
    /// past the newest of them (in the same file or a later one). Crossing a sealed file moves
    /// on to the next without a gap or a duplicate; it sleeps on the followed file's doorbell
    /// meanwhile. When the timeout passes first, the result holds no more records than
    /// `position` (it may name the next file's start, the same point of the sequence).
    /// - Throws: `fellBehind` if the retention removed a file the position needs.
    public func waitForRecords(
        beyond position: SeriesPosition, timeout: Duration, strategy: WaitStrategy = .block
    ) throws(RecordTableError) -> SeriesPosition {
        let deadline = monotonicNanoseconds().saturatingAdd(timeout.saturatingNanoseconds)
        var position = position
        var pause = 1_000
        var crossed = false
        while true {
            let now = monotonicNanoseconds()
            guard let table = try readable(position.file) else {
                // The next file is being created: look again shortly.
                guard now < deadline else { return position }
                sleepMicroseconds(min(pause, Int((deadline - now) / 1_000) + 1))
                pause = min(pause * 2, 10_000)
                continue
            }
            let next = table.storage.sealedSuccessor()
            let count = try table.storage.refresh(requiringName: false)
            if count > position.index { return SeriesPosition(file: position.file, index: count) }
            if let next {
                position = SeriesPosition(file: next, index: 0)
                crossed = true
                continue
            }
            guard now < deadline else { return position }
            // Idle until records come: the time to close what was read and to open what comes next,
            // but not just past a roll, when the new file's first record is microseconds away.
            if !crossed {
                closeFinished()
                openLookahead(after: position.file)
            }
            crossed = false
            // The seal changes no count, so a sleeper that checked it just before a roll stored
            // it would sleep through the wake-up the roll sends: sleep in slices.
            let slice = min(deadline - now, Self.sealCheckInterval.saturatingNanoseconds)
            _ = try table.waitForRecords(
                beyond: position.index, timeout: .nanoseconds(Int64(clamping: slice)), strategy: strategy)
        }
    }

    /// The longest a follower sleeps before it looks at the seal again.
    static var sealCheckInterval: Duration { .milliseconds(20) }

    /// The positions just past the newest records, each time more arrive: an `AsyncSequence`
    /// that follows the series from `position` across its files, as
    /// ``waitForRecords(beyond:timeout:strategy:)`` does, on a thread of its own. It reads the
    /// series through a handle of its own, opened now.
    /// - Parameter position: Where to start following; by default the series' start.
    public func updates(from position: SeriesPosition? = nil) throws(RecordTableError) -> SeriesUpdates {
        var start = position ?? SeriesPosition(file: 1, index: 0)
        if position == nil { start = try startPosition() }
        return SeriesUpdates(
            start: start, follower: SeriesUpdates.Follower(try TableSeries<Record>.open(directory: directory)))
    }

    // MARK: Opening files to read

    /// File `number` open for reading (kept for the next call), or nil if it does not exist
    /// yet. Throws `fellBehind` if the retention removed it.
    func readable(_ number: Int) throws(RecordTableError) -> RecordTable<Record>? {
        if number == readingNumber, let reading { return reading }
        if number == previousNumber, let previous { return previous }
        if number == writingNumber, let writing { return writing }
        if number == lookaheadNumber, let table = lookahead {
            lookahead = nil
            keepReading(table, number: number)
            return table
        }
        let table: RecordTable<Record>
        do {
            table = try RecordTable<Record>.open(path: files.filePath(number))
        } catch  where error.code == .notFound {
            let numbers = try files.numbers(operation: "read")
            if let newest = numbers.last, number < newest {
                let oldest = numbers.first!
                throw RecordTableError(
                    .fellBehind, operation: "read", path: files.filePath(number),
                    message:
                        "the series' retention removed file \(number); the oldest file now is \(oldest), so this reader is \(oldest - number) file(s) behind"
                )
            }
            return nil
        }
        keepReading(table, number: number)
        return table
    }

    /// Makes `table` the file read now, keeping the one before it open too: a follower that
    /// crossed while it waited reads the end of the old file and then the new one.
    func keepReading(_ table: RecordTable<Record>, number: Int) {
        // Closed when the follower next goes to sleep (closing costs tens of µs of unmapping).
        if let previous { finished.append(previous) }
        previous = reading
        previousNumber = readingNumber
        reading = table
        readingNumber = number
    }
}
