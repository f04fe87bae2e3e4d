// The next file, made ahead of time. Creating a file costs a few hundred microseconds on ext4
// (open with O_TMPFILE, fallocate, mmap, linkat, a doorbell), which would otherwise fall on the
// append that rolls, and delay the first record of the new file for every follower. So a writer
// whose roll rule is a count or a size creates the next file as a *standby* once the current one
// is half full, and a follower that waits at the end of a file opens the next one if it exists.
//
// A standby is an ordinary, empty, unsealed file (docs/FORMAT.md, "Series"): a writer that opens
// the series and finds the newest file empty and unsealed, with an unsealed file before it,
// appends to the one before. That is also how a roll that a writer left between creating the
// next file and sealing the full one reads; either way no record is lost or repeated. Time rolls
// make no standby: a file's cycle is fixed when it is created.

import MemoryMappedFiles

extension TableSeries {
    /// The file to append to when the newest one is a standby: the number before it, if the
    /// newest is empty and unsealed and the one before it is unsealed; else nil.
    func currentBeforeStandby(_ numbers: [Int]) throws(RecordTableError) -> Int? {
        guard numbers.count >= 2, let newest = numbers.last, numbers[numbers.count - 2] == newest - 1 else {
            return nil
        }
        func isOpenAndEmpty(_ number: Int, empty: Bool) -> Bool {
            guard let table = try? RecordTable<Record>.open(path: files.filePath(number)) else { return false }
            defer { try? table.close() }
            return table.sealedSuccessor == nil && (!empty || table.count == 0)
        }
        return isOpenAndEmpty(newest, empty: true) && isOpenAndEmpty(newest - 1, empty: false) ? newest - 1 : nil
    }

    /// Makes the next file now if the roll rule is a count or a size and the current file is
    /// half full (or opens it, if another appender made it).
    func prepareStandbyIfDue() throws(RecordTableError) {
        guard standby == nil || standbyNumber != writingNumber + 1, let table = writing else { return }
        let half: Int
        switch roll {
        case .records(let limit): half = limit / 2
        case .bytes(let limit): half = max(0, limit - table.storage.header.dataOffset) / table.storage.stride / 2
        default: return
        }
        guard table.count >= max(1, half) else { return }
        try? standby?.close()
        standby = nil
        let next = writingNumber + 1
        do {
            let table = try openForWriting(next, creating: true)
            standby = table
            standbyNumber = next
            table.storage.touchFirstRecordPage(writing: true)
        } catch  where error.code == .sealed {
            // Other appenders rolled past it already: the next append follows their seals.
        }
    }

    /// The standby, if it is file `number`; the caller appends to it from now on.
    func takeStandby(_ number: Int) -> (RecordTable<Record>, Int)? {
        guard let table = standby, standbyNumber == number else { return nil }
        standby = nil
        if table.sealedSuccessor != nil {  // sealed by another appender meanwhile: follow the seals
            try? table.close()
            return nil
        }
        return (table, number)
    }

    /// A follower at the end of file `number`: opens the next file, if it exists, so that the
    /// crossing costs no open.
    func openLookahead(after number: Int) {
        guard lookaheadNumber != number + 1 || lookahead == nil else { return }
        guard let table = try? RecordTable<Record>.open(path: files.filePath(number + 1)) else { return }
        table.storage.touchFirstRecordPage(writing: false)
        table.storage.attachDoorbellListener()
        try? lookahead?.close()
        lookahead = table
        lookaheadNumber = number + 1
    }
}

extension TableSeries {
    /// Closes the files a follower finished reading.
    func closeFinished() {
        let done = finished
        finished = []
        for table in done { try? table.close() }
    }
}

extension TableStorage {
    /// Attaches the doorbell the live area names now, so that a first wait only registers.
    func attachDoorbellListener() {
        guard let words = unsafe RecordWaiting.liveWords(view!, bootIdentifier: bootIdentifier) else { return }
        listener.attach(ifNamed: words.doorbell)
    }

    /// Faults in the page of the first record now, so that the first append (`writing`) or the
    /// first read of it does not: on ext4 a first write to an allocated page of a new file costs
    /// tens of microseconds. The bytes past the count are capacity, whatever they hold; a writer
    /// stores the zero that is already there.
    func touchFirstRecordPage(writing: Bool) {
        guard unsafe capacity > 0 else { return }
        if writing && updatesInPlace {
            // An atomic store, which the optimizer keeps: a plain store of the value just loaded
            // from the same address is one it may remove.
            let first = unsafe SharedAtomics.loadAcquire(UnsafeRawPointer(records))
            unsafe SharedAtomics.storeRelease(records, first)
        } else {
            _ = unsafe SharedAtomics.loadAcquire(UnsafeRawPointer(records))
        }
    }
}
