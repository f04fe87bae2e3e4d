// The seed's non-persisted example, Process A (System.IO.MemoryMappedFiles_IPC_X), in Swift.
// Run it, then Process B and C in other terminals, pressing ENTER here in between.
// The registry is $MAPPED_REGISTRY, or a per-user default.

import Glibc
import MappedRegistry
import MemoryMappedFiles

/// Prints a line at once, even into a pipe (the prompts must appear before A waits).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

do {
    let mmf = try MemoryMappedFile.createNew(name: "testmap", capacity: 10000)
    let mutex = try NamedMutex(name: "testmapmutex", initiallyOwned: true)
    var stream = try mmf.makeViewStream()
    try stream.write(Int32(1))  // BinaryWriter.Write(1): four bytes, 01 00 00 00
    try stream.close()
    try mutex.unlock()

    say("Start Process B and press ENTER to continue.")
    _ = readLine()

    say("Start Process C and press ENTER to continue.")
    _ = readLine()

    try mutex.lock()
    var reader = try mmf.makeViewStream()
    func says(_ value: Bool?) -> String { value == true ? "True" : "False" }
    print("Process A says: \(says(reader.read(Bool.self)))")
    print("Process B says: \(says(reader.read(Bool.self)))")
    print("Process C says: \(says(reader.read(Bool.self)))")
    try mutex.unlock()
} catch {
    print("Process A: \(error)")
}
