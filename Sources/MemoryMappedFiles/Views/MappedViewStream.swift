/// A sequential view of part of a map with a cursor; .NET's `MemoryMappedViewStream`
/// together with the `BinaryReader` and `BinaryWriter` roles.
///
/// `read` and `write` advance ``position``. Reading at the end gives `nil` (or 0 bytes),
/// never a trap; writing past the end throws `endOfStream` and writes nothing.
/// Typed values are stored in the machine's byte order (little-endian on Linux's
/// x86-64 and arm64), unaligned, as `BinaryWriter` does.
///
/// The stream owns its mapping, like ``MappedViewAccessor``, and flushes a writable
/// view of a file when it is closed.
public struct MappedViewStream: ~Copyable, Sendable {
    /// The bytes the stream runs over.
    var accessor: MappedViewAccessor
    /// The cursor: the offset of the next byte to read or write. It may be set past
    /// the end; reads there return nothing. Setting it below zero traps.
    public var position: Int = 0 {
        willSet { precondition(newValue >= 0, "MappedViewStream: position \(newValue) is negative") }
    }

    init(accessor: consuming MappedViewAccessor) {
        self.accessor = accessor
    }

    /// The stream's length in bytes: the view's capacity.
    public var length: Int { accessor.capacity }
    /// The bytes between the cursor and the end.
    public var remaining: Int { max(0, length - position) }
    /// The distance from the page boundary below the stream's first byte to that byte; .NET's
    /// `MemoryMappedViewStream.PointerOffset`.
    public var pointerOffset: Int { accessor.pointerOffset }
    /// Whether the stream can be read; .NET's `CanRead`.
    public var canRead: Bool { accessor.canRead }
    /// Whether the stream can be written; .NET's `CanWrite`.
    public var canWrite: Bool { accessor.canWrite }

    /// Where ``seek(_:from:)`` counts from; .NET's `SeekOrigin`.
    public enum SeekOrigin: Sendable {
        /// From byte 0.
        case start
        /// From the cursor.
        case current
        /// From the end.
        case end
    }

    /// Moves the cursor and returns the new position; .NET's `Seek`.
    /// Traps if the new position would be negative.
    @discardableResult
    public mutating func seek(_ offset: Int, from origin: SeekOrigin = .start) -> Int {
        let base: Int
        switch origin {
        case .start: base = 0
        case .current: base = position
        case .end: base = length
        }
        position = base + offset
        return position
    }

    /// Reads the next `T`, or returns nil (and leaves the cursor) if fewer than
    /// `MemoryLayout<T>.size` bytes remain.
    public mutating func read<T: BitwiseCopyable>(_ type: T.Type = T.self) -> T? {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { return nil }
        defer { position += size }
        return accessor.read(T.self, at: position)
    }

    /// Reads the next byte as a Bool (non-zero is `true`); .NET's `ReadBoolean`.
    /// Returns nil at the end.
    public mutating func read(_ type: Bool.Type) -> Bool? {
        read(UInt8.self).map { $0 != 0 }
    }

    /// Copies up to `buffer.count` bytes into `buffer` and returns how many; 0 at the end.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, remaining)
        guard count > 0 else { return 0 }
        unsafe accessor.read(
            into: UnsafeMutableBufferPointer(
                start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count), at: position)
        position += count
        return count
    }

    /// Reads up to `maxCount` bytes; an empty array at the end.
    public mutating func readBytes(maxCount: Int) -> [UInt8] {
        let count = min(maxCount, remaining)
        guard count > 0 else { return [] }
        defer { position += count }
        return accessor.readArray(of: UInt8.self, count: count, at: position)
    }

    /// Writes a `T` at the cursor and advances it. Throws `endOfStream`, writing nothing,
    /// if it does not fit.
    public mutating func write<T: BitwiseCopyable>(_ value: T) throws(MappedFileError) {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw endOfStream(size) }
        accessor.write(value, at: position)
        position += size
    }

    /// Writes a Bool as one byte, 1 or 0; .NET's `Write(bool)`.
    public mutating func write(_ value: Bool) throws(MappedFileError) {
        try write(UInt8(value ? 1 : 0))
    }

    /// Writes bytes at the cursor and advances it. Throws `endOfStream`, writing nothing,
    /// if they do not fit.
    public mutating func write(bytes: RawSpan) throws(MappedFileError) {
        guard bytes.byteCount <= remaining else { throw endOfStream(bytes.byteCount) }
        unsafe bytes.withUnsafeBytes { source in
            unsafe accessor.write(contentsOf: source.assumingMemoryBound(to: UInt8.self), at: position)
        }
        position += bytes.byteCount
    }

    func endOfStream(_ count: Int) -> MappedFileError {
        MappedFileError(
            .endOfStream, operation: "write", path: accessor.state.path,
            message: "writing \(count) bytes at position \(position) would pass the stream's end at \(length)")
    }

    /// Flushes the stream's view to the file; see ``MappedViewAccessor/flush()``.
    public func flush() throws(MappedFileError) {
        try accessor.flush()
    }

    /// Unmaps the stream, flushing a writable view of a file first.
    public consuming func close(flush: Bool = true) throws(MappedFileError) {
        try accessor.close(flush: flush)
    }
}

extension MemoryMappedFile {
    /// Makes a sequential stream view; .NET's `CreateViewStream`.
    ///
    /// The parameters mean what they mean for ``makeViewAccessor(offset:length:access:)``:
    /// any offset, a length of 0 for the rest of the map, and the map's access by default.
    public func makeViewStream(
        offset: Int = 0, length: Int = 0, access: MemoryMappedFileAccess? = nil
    ) throws(MappedFileError) -> MappedViewStream {
        MappedViewStream(
            accessor: try mapView(
                offset: offset, length: length, access: access ?? self.access, operation: "makeViewStream"))
    }
}
