// What a series is told when it opens: when its writer starts the next file, and which old
// files it removes. And the position of a record in a series.

/// When a series' writer starts the next file.
public enum SeriesRoll: Sendable, Hashable {
    /// Never: the series stays one file (until a writer opens it with another rule).
    case never
    /// After this many records in a file. A batch is never split: the file it would overfill
    /// is sealed first, unless it is empty (then the batch goes in whole).
    case records(Int)
    /// When the records of a file would pass this many bytes of file (header included).
    case bytes(Int)
    /// At the start of each UTC hour.
    case hourly
    /// At each UTC midnight.
    case daily

    /// The cycle length in seconds, for the time-based rules.
    var cycleSeconds: Int64? {
        switch self {
        case .hourly: return 3_600
        case .daily: return 86_400
        default: return nil
        }
    }
}

/// Which sealed files a series' writer removes after it rolls. The file being written is never
/// removed. A reader that has a removed file open keeps reading it (the kernel keeps the file
/// while it is open); a follower that needs a removed file gets `fellBehind`.
public enum SeriesRetention: Sendable, Hashable {
    /// Keep every file.
    case forever
    /// Keep the newest `n` files (at least 1: the one being written).
    case files(Int)
    /// Remove a file once the next one was started (so its last record was written) longer ago
    /// than this.
    case age(Duration)
}

/// Where a record lies in a series: the file's number and the record's index in it.
///
/// A position just past the last record of a sealed file and the start of the next file are
/// the same point of the sequence: reading or waiting moves from the one to the other.
public struct SeriesPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The file's number (`00000001.mrec` is 1).
    public var file: Int
    /// The index of the record in that file.
    public var index: Int

    /// The position of record `index` of file `file`.
    public init(file: Int, index: Int) {
        self.file = file
        self.index = index
    }

    /// Ordered by file, then index.
    public static func < (lhs: SeriesPosition, rhs: SeriesPosition) -> Bool {
        (lhs.file, lhs.index) < (rhs.file, rhs.index)
    }

    /// `file:index`, as `mrec dump --from` reads it.
    public var description: String { "\(file):\(index)" }

    /// Reads `file:index`; nil if it is not two non-negative numbers (the file at least 1).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let file = Int(parts[0]), let index = Int(parts[1]), file >= 1, index >= 0 else {
            return nil
        }
        self.init(file: file, index: index)
    }
}
