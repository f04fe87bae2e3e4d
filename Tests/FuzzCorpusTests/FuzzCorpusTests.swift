import FuzzTargets
import Glibc
import TestSupport
import Testing

/// Tests/FuzzCorpus, found from this file's path.
let corpusDirectory: String = {
    var path = #filePath
    for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path + "/FuzzCorpus"
}()

/// The files in a directory, sorted.
func files(in directory: String) -> [String] {
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if !name.hasPrefix(".") { names.append(directory + "/" + name) }
    }
    return names.sorted()
}

@Suite("The fuzz corpus, replayed: every input, including past crashes, runs without a trap")
struct FuzzCorpusTests {
    @Test("each target's corpus", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) {
        let inputs = files(in: corpusDirectory + "/" + target.rawValue)
        #expect(inputs.count >= 3, "the seed corpus of \(target.rawValue) is missing")
        for input in inputs { target.run(readWholeFile(input)) }
    }
}
