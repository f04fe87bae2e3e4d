import CMappedShims
import Glibc

/// A random-access view of part of a map; .NET's `MemoryMappedViewAccessor`.
///
/// Offsets are bytes from the start of the view and need not be aligned. Reading
/// or writing past the end of the view traps, as an out-of-range Array index does:
/// `read(T.self, at: offset)` needs `0 <= offset` and `offset + MemoryLayout<T>.size <= capacity`.
/// Writing through a read-only view, or reading through a write-only one, traps too.
///
/// The view owns its mapping and unmaps it when it is closed or goes out of scope;
/// closing a writable view of a file flushes it first (msync), as .NET's Dispose does.
/// Use ``close(flush:)`` to see a flush error.
///
/// ## Safety
/// Typed reads copy the bytes out; a `T` must be a type for which every bit pattern
/// is valid (integers, floating-point numbers, and structs and tuples of them).
/// `Bool` has its own overloads that read a byte as `!= 0`. Another view or process
/// may write the same bytes at the same time: reads are then not atomic, as with
/// any shared memory. If another process truncates the file, touching a page past
/// its new end raises `SIGBUS` (see docs/CAVEATS.md).
@safe public struct MappedViewAccessor: ~Copyable, @unchecked Sendable {
    // SAFETY (Sendable): the view is ~Copyable, so one owner at a time touches it.
    //
    // Only the three fields every access needs live here, so the view is small enough
    // to travel in registers and a loop keeps them there; the rest is in `mapping`.

    /// The view's byte 0; valid for `capacity` bytes while `mapping` lives.
    @usableFromInline let base: UnsafeMutableRawPointer
    /// `capacity` if the view can be read, else 0: one compare checks both.
    @usableFromInline let readLimit: Int
    /// `capacity` if the view can be written, else 0.
    @usableFromInline let writeLimit: Int
    let mapping: ViewMapping

    init(mapping: ViewMapping, capacity: Int) {
        // SAFETY: pageDelta < page size <= mapping.length, so base stays inside the mapping.
        unsafe self.base = unsafe mapping.start + mapping.pageDelta
        self.readLimit = mapping.access.canRead ? capacity : 0
        self.writeLimit = mapping.access.canWrite ? capacity : 0
        self.mapping = mapping
    }

    /// The number of bytes the view covers; .NET's `Capacity`.
    public var capacity: Int { max(readLimit, writeLimit) }
    /// Where the view starts in its map, in bytes.
    public var offset: Int { mapping.offset }
    /// The access the view was made with.
    public var access: MemoryMappedFileAccess { mapping.access }
    /// How far the view's byte 0 lies past the page boundary its mapping starts on;
    /// .NET's `PointerOffset`. The mapping covers that many bytes before the view.
    public var pointerOffset: Int { mapping.pageDelta }
    /// Whether the view can be read through.
    public var canRead: Bool { access.canRead }
    /// Whether the view can be written through.
    public var canWrite: Bool { access.canWrite }
    var state: MappingState { mapping.state }
}

// MARK: - Bounds checks

extension MappedViewAccessor {
    // Two tests with separate exits, so that the compiler can hoist the first out of a loop:
    // `limit < byteCount` never changes within a loop, and after it one unsigned compare
    // checks the offset (a negative offset is huge as a UInt, and fails it).
    @inlinable @inline(__always)
    func checkRead(_ offset: Int, _ byteCount: Int) {
        if _slowPath(readLimit < byteCount) { sizeFailure(byteCount: byteCount, isWrite: false) }
        if _slowPath(UInt(bitPattern: offset) > UInt(bitPattern: readLimit &- byteCount)) {
            accessFailure(offset: offset, byteCount: byteCount, isWrite: false)
        }
    }

    @inlinable @inline(__always)
    func checkWrite(_ offset: Int, _ byteCount: Int) {
        if _slowPath(writeLimit < byteCount) { sizeFailure(byteCount: byteCount, isWrite: true) }
        if _slowPath(UInt(bitPattern: offset) > UInt(bitPattern: writeLimit &- byteCount)) {
            accessFailure(offset: offset, byteCount: byteCount, isWrite: true)
        }
    }

    /// The failure of the loop-invariant test. It takes nothing that changes within a loop,
    /// so the test can be moved out of the loop.
    @usableFromInline @inline(never)
    func sizeFailure(byteCount: Int, isWrite: Bool) -> Never {
        if isWrite && !canWrite { fatalError("MappedViewAccessor: cannot write to a view with .\(access) access") }
        if !isWrite && !canRead { fatalError("MappedViewAccessor: cannot read from a view with .\(access) access") }
        fatalError(
            "MappedViewAccessor: \(isWrite ? "write" : "read") of \(byteCount) bytes is out of range for a view of \(capacity) bytes"
        )
    }

    @usableFromInline @inline(never)
    func accessFailure(offset: Int, byteCount: Int, isWrite: Bool) -> Never {
        if isWrite && !canWrite { fatalError("MappedViewAccessor: cannot write to a view with .\(access) access") }
        if !isWrite && !canRead { fatalError("MappedViewAccessor: cannot read from a view with .\(access) access") }
        fatalError(
            "MappedViewAccessor: \(isWrite ? "write" : "read") of \(byteCount) bytes at offset \(offset) is out of range for a view of \(capacity) bytes"
        )
    }

    /// The byte count of `count` elements of `T`, trapping on overflow.
    @usableFromInline
    static func byteCount<T>(of type: T.Type, count: Int) -> Int {
        precondition(count >= 0, "MappedViewAccessor: negative element count \(count)")
        let (bytes, overflow) = MemoryLayout<T>.stride.multipliedReportingOverflow(by: count)
        precondition(!overflow, "MappedViewAccessor: \(count) elements of \(T.self) overflow Int")
        return bytes
    }
}

// MARK: - Typed access

extension MappedViewAccessor {
    /// Reads a `T` at a byte offset; .NET's `Read<T>`. Traps if it does not fit in the view.
    @inlinable @inline(__always)
    public func read<T: BitwiseCopyable>(_ type: T.Type = T.self, at offset: Int) -> T {
        checkRead(offset, MemoryLayout<T>.size)
        // SAFETY: checked to lie inside the mapping; loadUnaligned allows any alignment.
        return unsafe base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    /// Reads a byte at `offset` as a Bool: any non-zero byte is `true`; .NET's `ReadBoolean`.
    @inlinable
    public func read(_ type: Bool.Type, at offset: Int) -> Bool {
        read(UInt8.self, at: offset) != 0
    }

    /// Writes a `T` at a byte offset; .NET's `Write<T>`. Traps if it does not fit in the view.
    @inlinable @inline(__always)
    public mutating func write<T: BitwiseCopyable>(_ value: T, at offset: Int) {
        checkWrite(offset, MemoryLayout<T>.size)
        // SAFETY: checked to lie inside a writable mapping; storeBytes allows any alignment.
        unsafe base.storeBytes(of: value, toByteOffset: offset, as: T.self)
    }

    /// Writes a Bool as one byte, 1 or 0.
    @inlinable
    public mutating func write(_ value: Bool, at offset: Int) {
        write(UInt8(value ? 1 : 0), at: offset)
    }

    /// Copies `buffer.count` elements, spaced by `MemoryLayout<T>.stride`, from the view
    /// into `buffer`; .NET's `ReadArray<T>`.
    @inlinable
    public func read<T: BitwiseCopyable>(into buffer: UnsafeMutableBufferPointer<T>, at offset: Int) {
        let bytes = Self.byteCount(of: T.self, count: buffer.count)
        checkRead(offset, bytes)
        guard let destination = buffer.baseAddress else { return }
        // SAFETY: the source range was checked; the destination is the caller's buffer of that size.
        unsafe UnsafeMutableRawPointer(destination).copyMemory(from: base + offset, byteCount: bytes)
    }

    /// Returns `count` elements of `T` read from `offset`, spaced by `MemoryLayout<T>.stride`.
    @inlinable
    public func readArray<T: BitwiseCopyable>(of type: T.Type, count: Int, at offset: Int) -> [T] {
        let bytes = Self.byteCount(of: T.self, count: count)
        checkRead(offset, bytes)
        return unsafe [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            // SAFETY: the source range was checked; the array has room for `count` elements.
            unsafe UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base + offset, byteCount: bytes)
            initialized = count
        }
    }

    /// Copies the elements of a span into the view at `offset`; .NET's `WriteArray<T>`.
    /// Pass `array.span` to write an array.
    @inlinable
    public mutating func write<T: BitwiseCopyable>(contentsOf elements: Span<T>, at offset: Int) {
        let bytes = Self.byteCount(of: T.self, count: elements.count)
        checkWrite(offset, bytes)
        unsafe elements.withUnsafeBytes { source in
            // SAFETY: the destination range was checked and is writable.
            unsafe (base + offset).copyMemory(from: source.baseAddress!, byteCount: bytes)
        }
    }

    /// Copies the elements of a buffer into the view at `offset`.
    @inlinable
    public mutating func write<T: BitwiseCopyable>(contentsOf elements: UnsafeBufferPointer<T>, at offset: Int) {
        let bytes = Self.byteCount(of: T.self, count: elements.count)
        checkWrite(offset, bytes)
        guard let source = elements.baseAddress else { return }
        // SAFETY: the destination range was checked and is writable.
        unsafe (base + offset).copyMemory(from: UnsafeRawPointer(source), byteCount: bytes)
    }
}

// MARK: - Atomic access, for publishing data to other processes

extension MappedViewAccessor {
    /// Loads a `UInt64` at `offset` atomically, with acquire ordering: everything another
    /// process wrote before its matching `atomicStore(_:at:)` is visible after this load.
    /// Traps if `offset` is out of range or not a multiple of 8.
    @inlinable
    public func atomicLoad(_ type: UInt64.Type, at offset: Int) -> UInt64 {
        checkRead(offset, 8)
        unsafe precondition(
            (Int(bitPattern: base) + offset) & 7 == 0,
            "MappedViewAccessor: atomic access at offset \(offset) is not 8-byte aligned")
        // SAFETY: checked to lie inside the mapping and aligned for an 8-byte atomic.
        return unsafe cmapped_load_acquire_u64(base + offset)
    }

    /// Stores a `UInt64` at `offset` atomically, with release ordering: everything this
    /// process wrote before it is visible to a process that loads the value with
    /// `atomicLoad(_:at:)`. Traps if `offset` is out of range or not a multiple of 8.
    @inlinable
    public mutating func atomicStore(_ value: UInt64, at offset: Int) {
        checkWrite(offset, 8)
        unsafe precondition(
            (Int(bitPattern: base) + offset) & 7 == 0,
            "MappedViewAccessor: atomic access at offset \(offset) is not 8-byte aligned")
        // SAFETY: checked to lie inside a writable mapping and aligned for an 8-byte atomic.
        unsafe cmapped_store_release_u64(base + offset, value)
    }
}

// MARK: - Zero-copy access

extension MappedViewAccessor {
    /// The view's bytes, valid while the view is borrowed. Traps for a write-only view.
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            precondition(canRead, "MappedViewAccessor: cannot read from a view with .\(access) access")
            // SAFETY: the mapping lives as long as self, which the span's lifetime depends on.
            let span = unsafe RawSpan(_unsafeStart: UnsafeRawPointer(base), byteCount: capacity)
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// The view's bytes for writing, valid while the view is exclusively accessed.
    /// Traps for a read-only view.
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            precondition(canWrite, "MappedViewAccessor: cannot write to a view with .\(access) access")
            // SAFETY: the mapping lives as long as self, which the span's lifetime depends on.
            let span = unsafe MutableRawSpan(_unsafeStart: base, byteCount: capacity)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
    }

    /// `count` elements of `T` starting at byte `offset`, zero-copy, valid while the view
    /// is borrowed. Iterating `span.indices` is as fast as a raw pointer: the span checks
    /// its bounds once, not per element.
    ///
    /// Traps if the range is outside the view, if the view cannot be read, or if
    /// `offset` is not a multiple of `MemoryLayout<T>.alignment` (a view that starts at an
    /// unaligned map offset has unaligned element addresses; use `read(_:at:)` there).
    @_lifetime(borrow self)
    public func elements<T: BitwiseCopyable>(of type: T.Type, at offset: Int = 0, count: Int) -> Span<T> {
        checkRead(offset, Self.byteCount(of: T.self, count: count))
        let start = unsafe alignedElements(of: T.self, at: offset)
        // SAFETY: checked to lie inside the readable mapping, aligned; it lives as long as self.
        let span = unsafe Span<T>(_unsafeStart: start.assumingMemoryBound(to: T.self), count: count)
        return unsafe _overrideLifetime(span, borrowing: self)
    }

    /// `count` elements of `T` starting at byte `offset`, zero-copy and writable, valid
    /// while the view is exclusively accessed. Traps as ``elements(of:at:count:)`` does,
    /// and for a view that cannot be written.
    @_lifetime(&self)
    public mutating func mutableElements<T: BitwiseCopyable>(
        of type: T.Type, at offset: Int = 0, count: Int
    ) -> MutableSpan<T> {
        checkWrite(offset, Self.byteCount(of: T.self, count: count))
        let start = unsafe alignedElements(of: T.self, at: offset)
        // SAFETY: checked to lie inside the writable mapping, aligned; it lives as long as self.
        let span = unsafe MutableSpan<T>(_unsafeStart: start.assumingMemoryBound(to: T.self), count: count)
        return unsafe _overrideLifetime(span, mutating: &self)
    }

    /// The address of byte `offset`, trapping unless it is aligned for `T`.
    private func alignedElements<T>(of type: T.Type, at offset: Int) -> UnsafeMutableRawPointer {
        let start = unsafe base + offset
        precondition(
            Int(bitPattern: start) % MemoryLayout<T>.alignment == 0,
            "MappedViewAccessor: elements of \(T.self) at offset \(offset) are not aligned to \(MemoryLayout<T>.alignment) bytes"
        )
        return unsafe start
    }

    /// Calls `body` with the view's bytes. The span must not escape `body`.
    public func withBytes<Result: ~Copyable, Failure: Error>(
        _ body: (RawSpan) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(bytes)
    }

    /// Calls `body` with the view's bytes for writing. The span must not escape `body`.
    public mutating func withMutableBytes<Result: ~Copyable, Failure: Error>(
        _ body: (inout MutableRawSpan) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var span = mutableBytes
        return try body(&span)
    }

    /// Calls `body` with a pointer to the view's bytes, for C and other unsafe code;
    /// .NET's `SafeMemoryMappedViewHandle`. The pointer is valid only inside `body`,
    /// and writing through it is allowed only if ``canWrite`` is true.
    public func withUnsafeMutableBytes<Result: ~Copyable, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        unsafe try body(UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }
}

// MARK: - Flush and close

extension MappedViewAccessor {
    /// Writes the view's changes to the file and waits for the disk (msync `MS_SYNC`);
    /// .NET's `Flush`. Does nothing for views that do not write to a file.
    ///
    /// After a failed flush the whole map is marked failed, and every later flush of
    /// it throws `mapFailed`: a flush never reports success for data that may be lost.
    public func flush() throws(MappedFileError) {
        try flush(range: 0..<capacity)
    }

    /// Flushes the bytes in `range` (view offsets), widened to whole pages.
    public func flush(range: Range<Int>) throws(MappedFileError) {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= capacity,
            "MappedViewAccessor: flush range \(range) is out of range for a view of \(capacity) bytes")
        guard mapping.flushesOnClose, !range.isEmpty else { return }
        try mapping.synchronize(range, flags: MS_SYNC, operation: "flush")
    }

    /// Tells the kernel how `range` (view offsets; the whole view by default) will be used,
    /// so it can read ahead or let go of pages; madvise(2). A hint: what the view reads and
    /// writes stays the same.
    public func advise(_ advice: MappingAdvice, range: Range<Int>? = nil) {
        let range = range ?? 0..<capacity
        precondition(
            range.lowerBound >= 0 && range.upperBound <= capacity,
            "MappedViewAccessor: advice range \(range) is out of range for a view of \(capacity) bytes")
        guard !range.isEmpty else { return }
        // Dropping the pages of a copy-on-write view would discard its private changes.
        if advice == .doneWith && mapping.access == .copyOnWrite { return }
        precondition(
            advice != .populateWrite || canWrite,
            "MappedViewAccessor: .populateWrite advice for a view that cannot be written")
        mapping.advise(range, advice: advice.systemValue)
    }

    /// Starts writing the view's changes to the file without waiting (msync `MS_ASYNC`).
    public func flushAsync() throws(MappedFileError) {
        guard mapping.flushesOnClose else { return }
        try mapping.synchronize(0..<capacity, flags: MS_ASYNC, operation: "flushAsync")
    }

    /// Unmaps the view, flushing a writable view of a file first.
    ///
    /// - Parameter flush: Pass `false` to unmap without waiting for the disk. The data is
    ///   not lost: the kernel still writes it back later.
    /// - Throws: The flush's error. The view is unmapped either way.
    public consuming func close(flush: Bool = true) throws(MappedFileError) {
        var failure: MappedFileError?
        if flush {
            do { try self.flush() } catch { failure = error }
        }
        mapping.unmap()
        if let failure { throw failure }
    }
}
