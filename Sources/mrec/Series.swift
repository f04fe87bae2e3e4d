// mrec on a series: a directory of tables named 00000001.mrec, 00000002.mrec, … that read as one
// sequence (docs/FORMAT.md, "Series"). `info`, `dump [--follow]` and `verify` take its directory.

import ArgumentParser
import Glibc
import MemoryMappedFiles
import RecordTable

/// Whether `path` is a directory (a series), following symbolic links.
func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
}

/// The files of a series, open read-only, read as one sequence of records: index 0 is the first
/// record of the oldest file. The newest file grows; `follow` moves on when it is sealed.
final class SeriesSource: RecordSource {
    let directory: String
    /// The files open now, oldest first, with the sequence index of each one's first record.
    private(set) var files: [(number: Int, table: DynamicRecordTable, start: Int)] = []

    /// - Parameter everyFile: Open every file (info, verify); otherwise the sequence only: the
    ///   files up to the first that is not sealed, the one being appended to (a writer may have
    ///   made the next one ahead of time, empty: a *standby*).
    init(directory: String, everyFile: Bool = false) throws {
        self.directory = directory
        let numbers: [Int]
        do { numbers = try SeriesFiles.numbers(inDirectory: directory) } catch {
            complain(error.description)
            throw ExitCode(error.exitStatus.rawValue)
        }
        guard !numbers.isEmpty else {
            complain("\(directory): no series files (00000001.mrec, …) in this directory")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        var start = 0
        for number in numbers {
            let table = try openTable(SeriesFiles.path(ofFile: number, inDirectory: directory))
            files.append((number, table, start))
            start += table.count
            if !everyFile && table.sealedSuccessor == nil { break }
        }
    }

    /// Whether file `position` is a standby: the newest, empty and unsealed, after an unsealed one.
    func isStandby(_ position: Int) -> Bool {
        position == files.count - 1 && position > 0 && files[position].table.count == 0
            && files[position].table.sealedSuccessor == nil && files[position - 1].table.sealedSuccessor == nil
    }

    var schema: RecordSchema { files[0].table.schema }
    var count: Int { files.last.map { $0.start + $0.table.count } ?? 0 }
    var bigEndian: Bool { false }

    /// The file holding record `index` of the sequence, and the record's index in it.
    func locate(_ index: Int) -> (table: DynamicRecordTable, local: Int) {
        var low = 0, high = files.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if files[middle].start <= index { low = middle } else { high = middle - 1 }
        }
        return (files[low].table, index - files[low].start)
    }

    func fileOffset(ofRecord index: Int) -> Int {
        let (table, local) = locate(index)
        return table.dataOffset + local * table.schema.stride
    }

    func withRecordBytes<Result>(at index: Int, _ body: (RawSpan) -> Result) -> Result {
        let (table, local) = locate(index)
        return table.withRecordBytes(at: local, body)
    }

    func advise(_ advice: MappingAdvice, records range: Range<Int>) {}

    /// Waits up to `timeout` for records past `known` (a sequence index), moving to the next
    /// file when the newest is sealed; returns the new count of the sequence.
    func waitForRecords(beyond known: Int, timeout: Duration) throws(RecordTableError) -> Int {
        while true {
            let newest = files[files.count - 1]
            let local = max(0, known - newest.start)
            let sealed = newest.table.sealedSuccessor
            let count = try newest.table.waitForRecords(beyond: local, timeout: sealed == nil ? timeout : .zero)
            if newest.start + count > known || sealed == nil { return newest.start + count }
            let next = try DynamicRecordTable.open(path: SeriesFiles.path(ofFile: sealed!, inDirectory: directory))
            files.append((sealed!, next, newest.start + count))
        }
    }

    /// Whether any file of the series has a writer (the newest, in practice).
    func writerIsActive() -> Bool { (try? files.last?.table.writerIsActive()) == true }
}

/// `mrec info DIR`.
func seriesInfo(_ directory: String, json: Bool) throws {
    let series = try SeriesSource(directory: directory, everyFile: true)
    let writer = series.writerIsActive() ? "active" : "none"
    var out = Output()
    if json {
        let files = series.files.map { file in
            "{\"file\":\(file.number),\"path\":\(jsonString(file.table.path)),\"count\":\(file.table.count),"
                + "\"sealed\":\(file.table.sealedSuccessor.map { "{\"next\":\($0)}" } ?? "null")}"
        }.joined(separator: ",")
        let fields = series.schema.fields.map {
            "{\"name\":\(jsonString($0.name)),\"type\":\"\($0.type.name)\",\"offset\":\($0.offset),\"count\":\($0.count)}"
        }.joined(separator: ",")
        out.line(
            "{\"series\":\(jsonString(directory)),\"records\":\(series.count),\"stride\":\(series.schema.stride),"
                + "\"writer\":\"\(writer)\",\"files\":[\(files)],\"fields\":[\(fields)]}")
    } else {
        out.line("series          \(directory)")
        let first = SeriesFiles.name(ofFile: series.files[0].number)
        let last = SeriesFiles.name(ofFile: series.files[series.files.count - 1].number)
        out.line("files           \(series.files.count) (\(first) to \(last))")
        out.line("records         \(series.count), stride \(series.schema.stride)")
        out.line("writer          \(writer)")
        for (position, file) in series.files.enumerated() {
            let state =
                file.table.sealedSuccessor.map { "sealed, continues in file \($0)" }
                ?? (series.isStandby(position) ? "standby (made ahead of the roll)" : "open for appending")
            out.line("  file \(file.number)".padding(16) + "\(file.table.count) records".padding(20) + state)
        }
        out.line("fields")
        for field in series.schema.fields {
            let type = field.type.name + (field.count == 1 ? "" : "[\(field.count)]")
            out.line("  " + field.name.padding(16) + type.padding(12) + "offset \(field.offset)")
        }
    }
    out.flush()
}

/// `mrec verify DIR`: every file verified as a table, and the series' own rules: one schema,
/// every file but the newest sealed, each seal naming the next file.
func seriesVerify(_ directory: String) throws {
    let series = try SeriesSource(directory: directory, everyFile: true)
    var out = Output()
    var damaged = false
    for (position, file) in series.files.enumerated() {
        let report = file.table.verify()
        for warning in report.warnings { out.line("\(file.table.path): warning: \(warning)") }
        for finding in report.findings { out.line("\(file.table.path): \(finding)") }
        if !report.isClean { damaged = true }
        if file.table.schema != series.schema {
            out.line("\(file.table.path): its schema differs from the series' first file")
            damaged = true
        }
        let isNewest = position == series.files.count - 1
        switch (file.table.sealedSuccessor, isNewest) {
        case (nil, false) where series.isStandby(position + 1):
            break  // appended to now; the next file was made ahead of the roll
        case (nil, false):
            out.line("\(file.table.path): not sealed, though file \(series.files[position + 1].number) follows it")
            damaged = true
        case (let next?, false) where next != series.files[position + 1].number:
            out.line(
                "\(file.table.path): sealed naming file \(next), but file \(series.files[position + 1].number) follows it"
            )
            damaged = true
        case (let next?, true):
            out.line(
                "\(file.table.path): sealed naming file \(next), which does not exist (a roll in progress, or damage)")
            damaged = true
        default: break
        }
    }
    let summary = "\(series.files.count) files, \(series.count) records"
    out.line(damaged ? "\(directory): damaged, \(summary)" : "\(directory): ok, \(summary)")
    out.flush()
    if damaged { throw ExitCode(ExitStatus.fileProblem.rawValue) }
}
