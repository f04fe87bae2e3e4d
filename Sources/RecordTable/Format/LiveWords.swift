// The two checked words of the live area: the live count and the seal mark (docs/FORMAT.md,
// "Live area"). Both carry a 16-bit check, so that 0 and any damaged word read as absent.

/// The seal mark (minor 2): a sealed table takes no more records, and its series continues in
/// the file numbered `next`. Encoded as a live word is, so that 0, and any damaged word, reads
/// as "not sealed".
enum SealMark {
    static func word(next: Int) -> UInt64 { LiveCount.word(next) }
    /// The next file's number, or nil for an unsealed table (0, or a word whose check fails).
    static func next(_ word: UInt64) -> Int? { LiveCount.count(word).flatMap { $0 > 0 ? $0 : nil } }
}

/// The live count as one 8-byte word: 48 bits of count and a 16-bit check, the complement
/// of the XOR of the count's three 16-bit chunks. Any single damaged byte fails the check.
@usableFromInline
enum LiveCount {
    static let maximum = (1 << 48) - 1
    /// A word whose check fails (the check of count 0 is 0xFFFF): "no live count".
    static let invalidWord: UInt64 = 0

    @inlinable @inline(__always)
    static func word(_ count: Int) -> UInt64 {
        let value = UInt64(count)
        return value | check(value) << 48
    }

    /// The count in `word`, or nil if the check fails.
    static func count(_ word: UInt64) -> Int? {
        let value = word & 0xFFFF_FFFF_FFFF
        return word >> 48 == check(value) ? Int(value) : nil
    }

    @inlinable @inline(__always)
    static func check(_ value: UInt64) -> UInt64 {
        ~(value ^ value >> 16 ^ value >> 32) & 0xFFFF
    }
}
