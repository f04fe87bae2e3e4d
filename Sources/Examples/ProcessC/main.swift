// The seed's non-persisted example, Process C (System.IO.MemoryMappedFiles_IPC_B), in Swift.

import MappedRegistry
import MemoryMappedFiles

do {
    let mmf = try MemoryMappedFile.openExisting(name: "testmap")
    let mutex = try NamedMutex.openExisting(name: "testmapmutex")
    try mutex.lock()
    var stream = try mmf.makeViewStream(offset: 2, length: 0)
    try stream.write(Int32(1))
    try stream.close()
    try mutex.unlock()
} catch let error as RegistryError where error.code == .notFound {
    print("Memory-mapped file does not exist. Run Process A first, then B.")
} catch {
    print("Process C: \(error)")
}
