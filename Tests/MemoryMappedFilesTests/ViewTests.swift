import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

/// The seed's struct: four 16-bit channels.
struct MyColor: BitwiseCopyable, Equatable {
    var red: Int16
    var green: Int16
    var blue: Int16
    var alpha: Int16

    mutating func brighten(by value: Int16) {
        red = Int16(min(Int(Int16.max), Int(red) + Int(value)))
        green = Int16(min(Int(Int16.max), Int(green) + Int(value)))
        blue = Int16(min(Int(Int16.max), Int(blue) + Int(value)))
        alpha = Int16(min(Int(Int16.max), Int(alpha) + Int(value)))
    }
}

@Suite("Views: offsets, overlap, typed access and spans")
struct ViewTests {
    let directory = TemporaryDirectory()

    @Test("an unaligned offset maps from the page below and hides the difference")
    func unalignedOffset() throws {
        let path = directory.file("data")
        let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        writeFile(path, bytes)
        let map = try MemoryMappedFile.createFromFile(path: path, access: .read)
        let view = try map.makeViewAccessor(offset: 4097, length: 100)
        #expect(view.offset == 4097)
        #expect(view.capacity == 100)
        #expect(view.pointerOffset == 1)
        #expect(view.read(UInt8.self, at: 0) == bytes[4097])
        #expect(view.read(UInt8.self, at: 99) == bytes[4196])
    }

    @Test("length 0 runs to the end of the map")
    func lengthZeroToEnd() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 10_000)
        #expect(try map.makeViewAccessor(offset: 1234).capacity == 10_000 - 1234)
        #expect(try map.makeViewStream(offset: 1, length: 0).length == 9_999)
    }

    @Test("overlapping views of one map see each other's writes at once")
    func overlappingViews() throws {
        let path = directory.file("overlap")
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 3 * 4096)
        var whole = try map.makeViewAccessor()
        var middle = try map.makeViewAccessor(offset: 4000, length: 5000)
        let tail = try map.makeViewAccessor(offset: 8191)
        whole.write(UInt64(11), at: 8191)
        #expect(middle.read(UInt64.self, at: 4191) == 11)
        #expect(tail.read(UInt64.self, at: 0) == 11)
        middle.write(UInt16(0xBEEF), at: 4191)
        #expect(whole.read(UInt16.self, at: 8191) == 0xBEEF)
    }

    @Test("a second process that maps the same file sees writes without remapping")
    func secondProcessSeesWrites() throws {
        let path = directory.file("shared")
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 1 << 20)
        var view = try map.makeViewAccessor()
        let child = ChildProcess(helper("wait-for", path, "500008", "123456789"))
        #expect(child.readLine() == "mapped")
        view.write(UInt64(123_456_789), at: 500_008)
        #expect(child.readLine() == "seen")
        #expect(child.wait() == .exited(0))

        let (end, _) = run(helper("write", path, "16", "4242"))
        #expect(end == .exited(0))
        #expect(view.read(UInt64.self, at: 16) == 4242)
    }

    @Test("typed reads and writes at unaligned offsets")
    func unalignedTypedAccess() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        var view = try map.makeViewAccessor()
        for offset in [1, 3, 5, 7, 4087] {
            view.write(UInt64(0x0102_0304_0506_0708) &+ UInt64(offset), at: offset)
            #expect(view.read(UInt64.self, at: offset) == 0x0102_0304_0506_0708 &+ UInt64(offset))
        }
        view.write(Double.pi, at: 1001)
        #expect(view.read(Double.self, at: 1001) == Double.pi)
        view.write((Int32(-1), Float(2.5)), at: 2001)
        let pair = view.read((Int32, Float).self, at: 2001)
        #expect(pair.0 == -1 && pair.1 == 2.5)
        // Little-endian, byte by byte.
        view.write(UInt32(0x1122_3344), at: 3000)
        #expect(view.read(UInt8.self, at: 3000) == 0x44)
        #expect(view.read(UInt8.self, at: 3003) == 0x11)
    }

    @Test("Bool reads any non-zero byte as true and writes 1 or 0")
    func booleans() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 16)
        var view = try map.makeViewAccessor()
        view.write(UInt8(2), at: 0)
        #expect(view.read(Bool.self, at: 0) == true)
        view.write(false, at: 1)
        view.write(true, at: 2)
        #expect(view.read(UInt8.self, at: 1) == 0)
        #expect(view.read(UInt8.self, at: 2) == 1)
    }

    @Test("the seed's MyColor.Brighten example ports directly")
    func seedColorExample() throws {
        let path = directory.file("ExtremelyLargeImage.data")
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 1 << 16)
        let offset = 1 << 12, length = 1 << 13
        var accessor = try map.makeViewAccessor(offset: offset, length: length)
        accessor.write(MyColor(red: 1, green: 2, blue: 3, alpha: Int16.max - 5), at: 0)
        let colorSize = MemoryLayout<MyColor>.size
        for i in stride(from: 0, to: length, by: colorSize) {
            var color = accessor.read(MyColor.self, at: i)
            color.brighten(by: 10)
            accessor.write(color, at: i)
        }
        try accessor.close()
        let first = preadBytes(path, offset: offset, count: 8).withUnsafeBytes { $0.loadUnaligned(as: MyColor.self) }
        #expect(first == MyColor(red: 11, green: 12, blue: 13, alpha: Int16.max))
        let last = preadBytes(path, offset: offset + length - 8, count: 8).withUnsafeBytes {
            $0.loadUnaligned(as: MyColor.self)
        }
        #expect(last == MyColor(red: 10, green: 10, blue: 10, alpha: 10))
        #expect(preadBytes(path, offset: offset + length, count: 8) == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("bulk array reads and writes, spaced by stride")
    func bulkArrays() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 1 << 16)
        var view = try map.makeViewAccessor()
        let colors = (0..<100).map { MyColor(red: Int16($0), green: 1, blue: 2, alpha: 3) }
        view.write(contentsOf: colors.span, at: 3)
        #expect(view.readArray(of: MyColor.self, count: 100, at: 3) == colors)
        #expect(view.read(MyColor.self, at: 3 + 99 * 8).red == 99)
        var buffer = [MyColor](repeating: MyColor(red: 0, green: 0, blue: 0, alpha: 0), count: 10)
        buffer.withUnsafeMutableBufferPointer { view.read(into: $0, at: 3 + 8 * 50) }
        #expect(buffer == Array(colors[50..<60]))
        #expect(view.readArray(of: UInt32.self, count: 0, at: 1 << 16).isEmpty)
    }

    @Test("RawSpan and MutableRawSpan give zero-copy access, as properties and in closures")
    func spans() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 8192)
        var view = try map.makeViewAccessor(offset: 100, length: 1000)
        var bytes = view.mutableBytes
        bytes.storeBytes(of: UInt16(0xABCD), toByteOffset: 10, as: UInt16.self)
        #expect(view.bytes.byteCount == 1000)
        #expect(view.bytes.unsafeLoadUnaligned(fromByteOffset: 10, as: UInt16.self) == 0xABCD)
        view.withMutableBytes { $0.storeBytes(of: 9, toByteOffset: 999, as: UInt8.self) }
        #expect(view.withBytes { $0.unsafeLoad(fromByteOffset: 999, as: UInt8.self) } == 9)
        let other = try map.makeViewAccessor()
        #expect(other.read(UInt16.self, at: 110) == 0xABCD)
    }

    @Test("typed spans: zero-copy elements, shared with the view's other accessors")
    func typedSpans() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 1 << 16)
        var view = try map.makeViewAccessor(offset: 4096)
        var colors = view.mutableElements(of: MyColor.self, at: 8, count: 100)
        colors[42] = MyColor(red: 1, green: 2, blue: 3, alpha: 4)
        #expect(view.read(MyColor.self, at: 8 + 42 * 8) == MyColor(red: 1, green: 2, blue: 3, alpha: 4))
        view.write(Int16(9), at: 8 + 99 * 8)
        let elements = view.elements(of: MyColor.self, at: 8, count: 100)
        #expect(elements.count == 100)
        #expect(elements[99].red == 9)
        #expect(elements[42].alpha == 4)
    }

    @Test("an unaligned typed span traps")
    func unalignedSpanTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
            let view = try map.makeViewAccessor()
            _ = view.elements(of: UInt64.self, at: 4, count: 2).count
        }
        expectTrapMessage(result, "elements of UInt64 at offset 4 are not aligned to 8 bytes")
    }

    @Test("reading past the end of a view traps", arguments: [993, -1, Int.max, Int.min])
    func readPastEndTraps(offset: Int) async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { [offset] in
            let map = try MemoryMappedFile.createAnonymous(capacity: 1000)
            let view = try map.makeViewAccessor()
            _ = view.read(UInt64.self, at: offset)
        }
        expectTrapMessage(result, "is out of range for a view of 1000 bytes")
    }

    @Test("the last fitting read is allowed")
    func lastFittingRead() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 1000)
        var view = try map.makeViewAccessor()
        view.write(UInt64.max, at: 992)
        #expect(view.read(UInt64.self, at: 992) == .max)
    }

    @Test("writing past the end of a view traps")
    func writePastEndTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 1000)
            var view = try map.makeViewAccessor(offset: 500)
            view.write(UInt32(1), at: 497)
        }
        expectTrapMessage(result, "write of 4 bytes at offset 497 is out of range for a view of 500 bytes")
    }

    @Test("a bulk read past the end traps")
    func bulkPastEndTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 1000)
            let view = try map.makeViewAccessor()
            _ = view.readArray(of: UInt64.self, count: 126, at: 0)
        }
        expectTrapMessage(result, "read of 1008 bytes is out of range for a view of 1000 bytes")
    }

    @Test("a view past the map's capacity traps")
    func viewPastCapacityTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 1000)
            _ = try map.makeViewAccessor(offset: 900, length: 101)
        }
        expectTrapMessage(result, "a view of 101 bytes at offset 900 does not fit in a map of 1000 bytes")
    }
}

@Suite("Stream views")
struct StreamTests {
    @Test("reads and writes advance the cursor; seek moves it")
    func cursor() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 64)
        var stream = try map.makeViewStream()
        #expect(stream.length == 64)
        try stream.write(Int32(1))
        try stream.write(true)
        try stream.write(Double(2.5))
        #expect(stream.position == 13)
        stream.seek(0)
        #expect(stream.read(Int32.self) == 1)
        #expect(stream.read(Bool.self) == true)
        #expect(stream.read(Double.self) == 2.5)
        #expect(stream.seek(-4, from: .end) == 60)
        #expect(stream.seek(2, from: .current) == 62)
    }

    @Test("reading at the end gives nil or 0 bytes and leaves the cursor")
    func endOfStreamOnRead() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 10)
        var stream = try map.makeViewStream()
        stream.position = 7
        #expect(stream.read(UInt32.self) == nil)
        #expect(stream.position == 7)
        #expect(stream.readBytes(maxCount: 100).count == 3)
        #expect(stream.read(UInt8.self) == nil)
        stream.position = 1000
        #expect(stream.remaining == 0)
        var buffer = [UInt8](repeating: 0, count: 4)
        #expect(buffer.withUnsafeMutableBytes { stream.read(into: $0) } == 0)
    }

    @Test("writing past the end throws endOfStream and writes nothing")
    func endOfStreamOnWrite() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 10)
        var stream = try map.makeViewStream()
        stream.position = 8
        let error = mappedError { try stream.write(UInt32(0xFFFF_FFFF)) }
        #expect(error?.code == .endOfStream)
        #expect(stream.position == 8)
        let bytes: [UInt8] = [1, 2, 3]
        #expect(mappedError { try stream.write(bytes: bytes.span.bytes) }?.code == .endOfStream)
        let firstTwo = Array(bytes[..<2])
        try stream.write(bytes: firstTwo.span.bytes)
        #expect(stream.position == 10)
        stream.position = 8
        #expect(stream.readBytes(maxCount: 2) == [1, 2])
    }

    @Test("a stream at an offset sees the map from there")
    func streamAtOffset() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 10_000)
        var writer = try map.makeViewStream(offset: 4095, length: 0)
        try writer.write(UInt16(0x0102))
        var reader = try map.makeViewStream()
        reader.position = 4095
        #expect(reader.read(UInt16.self) == 0x0102)
        #expect(try map.makeViewStream(access: .read).canWrite == false)
    }
}

/// The resident kilobytes of the mapping that holds `address`, from /proc/self/smaps.
func residentKilobytes(of address: UnsafeRawPointer) -> Int? {
    let text = String(decoding: readWholeFile("/proc/self/smaps"), as: UTF8.self)
    var inside = false
    for line in text.split(separator: "\n") {
        if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
            let low = UInt(line[..<dash], radix: 16), let high = UInt(line[line.index(after: dash)..<space], radix: 16)
        {
            inside = (low..<high).contains(UInt(bitPattern: address))
        } else if inside, line.hasPrefix("Rss:") {
            return Int(line.dropFirst(4).split(separator: " ").first ?? "")
        }
    }
    return nil
}

@Suite("Paging advice")
struct AdviceTests {
    let directory = TemporaryDirectory()

    @Test("doneWith lets go of a shared view's pages; the data stays and comes back on access")
    func doneWithShared() throws {
        let path = directory.file("advice.data")
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 16 << 20)
        var view = try map.makeViewAccessor()
        view.advise(.willNeed)
        for offset in stride(from: 0, to: view.capacity, by: 4096) { view.write(UInt64(offset), at: offset) }
        let base = view.withUnsafeMutableBytes { UnsafeRawPointer($0.baseAddress!) }
        let before = try #require(residentKilobytes(of: base))
        #expect(before >= 16 << 10)
        view.advise(.doneWith, range: 0..<view.capacity)
        let after = try #require(residentKilobytes(of: base))
        #expect(after < 1024, "resident \(before) kB before, \(after) kB after")
        view.advise(.sequential)
        #expect(
            stride(from: 0, to: view.capacity, by: 4096).allSatisfy { view.read(UInt64.self, at: $0) == UInt64($0) })
        try view.close()
        try map.close()
    }

    @Test("doneWith keeps a copy-on-write view's private changes")
    func doneWithCopyOnWrite() throws {
        let path = directory.file("private.data")
        writeFile(path, [UInt8](repeating: 7, count: 8192))
        let map = try MemoryMappedFile.createFromFile(path: path, access: .copyOnWrite)
        var view = try map.makeViewAccessor()
        view.write(UInt8(99), at: 5000)
        view.advise(.doneWith)
        #expect(view.read(UInt8.self, at: 5000) == 99)
        #expect(preadBytes(path, offset: 5000, count: 1) == [7])
        try view.close()
        try map.close()
    }
}
