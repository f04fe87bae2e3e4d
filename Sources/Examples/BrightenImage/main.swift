// The seed's persisted example (MemoryMappedFile.CreateFromFile#1), in Swift:
// brighten a 512 MiB region at offset 256 MiB of a large image file through a
// random-access view. `make demo` runs it scaled down 16×; `--full` uses the seed's sizes.
//
//   brighten-image [--file PATH] [--full]

import Glibc
import ImageColor
import MemoryMappedFiles

let arguments = ExampleArguments()
let path = arguments.value("--file") ?? "ExtremelyLargeImage.data"
let scale = arguments.has("--full") ? 1 : 16
let offset = 0x1000_0000 / scale  // 256 megabytes
let length = 0x2000_0000 / scale  // 512 megabytes

do throws(MappedFileError) {
    // The seed opens an existing file; to be runnable on its own, this creates one if needed.
    let map = try MemoryMappedFile.createFromFile(path: path, mode: .openOrCreate, capacity: 0x4000_0000 / scale)
    print("Mapped \(path): \(map.capacity) bytes")

    // Create a random access view, from the 256th megabyte (the offset)
    // to the 768th megabyte (the offset plus length).
    var accessor = try map.makeViewAccessor(offset: offset, length: length)
    let colorSize = MemoryLayout<MyColor>.size
    let before = accessor.read(MyColor.self, at: 0)

    // Make changes to the view.
    var start = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    for i in stride(from: 0, to: length, by: colorSize) {
        var color = accessor.read(MyColor.self, at: i)
        color.brighten(by: 10)
        accessor.write(color, at: i)
    }
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9

    print(
        "Brightened \(length / colorSize) colors at offset \(offset) in \(Int(seconds * 1000)) ms: \(before) -> \(accessor.read(MyColor.self, at: 0))"
    )
    try accessor.close()  // flushes to the file, as .NET's Dispose does
    try map.close()
} catch {
    print("brighten-image: \(error)")
    exit(1)
}
