import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

/// Paging control (issue #18): populate at map time, populate a range later, huge-page advice.
@Suite("Paging: populate, prefetch and huge pages", .timeLimit(.minutes(3)))
struct PagingTests {
    let directory = TemporaryDirectory()

    /// The smaps block of the mapping that starts at `address`: its resident bytes and VmFlags.
    func smaps(of address: UnsafeRawPointer) -> (resident: Int, flags: [Substring])? {
        let text = String(decoding: readWholeFile("/proc/self/smaps"), as: UTF8.self)
        let start = String(UInt(bitPattern: address), radix: 16)
        var inBlock = false, resident = -1
        for line in text.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line.first?.isHexDigit == true, !line.hasPrefix("Rss") {
                if inBlock { break }
                inBlock = line[..<dash].drop { $0 == "0" } == Substring(start)
            } else if inBlock && line.hasPrefix("Rss:") {
                resident = (Int(line.split(separator: " ")[1]) ?? -1) * 1024
            } else if inBlock && line.hasPrefix("VmFlags:") {
                return (resident, line.split(separator: " ").dropFirst().map { $0 })
            }
        }
        return nil
    }

    @Test("the .populate option maps every page of a view when it is made; without it, none")
    func populateOption() throws {
        let size = 8 << 20
        let lazy = try MemoryMappedFile.createAnonymous(capacity: size, options: .delayAllocatePages)
        let lazyView = try lazy.makeViewAccessor()
        let eager = try MemoryMappedFile.createAnonymous(capacity: size, options: [.delayAllocatePages, .populate])
        let eagerView = try eager.makeViewAccessor()
        let lazyResident = lazyView.withUnsafeMutableBytes { smaps(of: $0.baseAddress!)?.resident }
        let eagerResident = eagerView.withUnsafeMutableBytes { smaps(of: $0.baseAddress!)?.resident }
        #expect(lazyResident == 0)
        #expect(eagerResident == size)
    }

    @Test("populateRead maps a file's range in one call; hugePages marks the mapping")
    func populateAdvice() throws {
        let path = directory.file("pages")
        writeFile(path, [UInt8](repeating: 7, count: 16 << 20))
        let map = try MemoryMappedFile.createFromFile(path: path, access: .read)
        let view = try map.makeViewAccessor()
        let before = view.withUnsafeMutableBytes { smaps(of: $0.baseAddress!)?.resident }
        view.advise(.populateRead, range: 0..<(4 << 20))
        let after = view.withUnsafeMutableBytes { smaps(of: $0.baseAddress!)?.resident }
        #expect(before == 0)
        #expect(after == 4 << 20)
        #expect(view.read(UInt8.self, at: 1 << 20) == 7)

        let memory = try MemoryMappedFile.createAnonymous(capacity: 4 << 20)
        let anonymous = try memory.makeViewAccessor()
        anonymous.advise(.hugePages)
        let flags = anonymous.withUnsafeMutableBytes { smaps(of: $0.baseAddress!)?.flags ?? [] }
        #expect(flags.contains("hg"))
    }
}
