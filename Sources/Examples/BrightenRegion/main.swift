// The seed's second persisted example (MemoryMappedFile.OpenExisting#1), in Swift:
// another process opens the same image and brightens a different region.
// Until a name is published through the MappedRegistry module, it opens the file by path.
//
//   brighten-region [--file PATH]

import Glibc
import ImageColor
import MemoryMappedFiles

let path = ExampleArguments().value("--file") ?? "ExtremelyLargeImage.data"

do throws(MappedFileError) {
    // Assumes another process has created the file.
    let map = try MemoryMappedFile.createFromFile(path: path, mode: .open)
    var accessor = try map.makeViewAccessor(offset: 4_000_000, length: 2_000_000)
    let colorSize = MemoryLayout<MyColor>.size
    let before = accessor.read(MyColor.self, at: 0)

    // Make changes to the view.
    for i in stride(from: 0, to: 1_500_000, by: colorSize) {
        var color = accessor.read(MyColor.self, at: i)
        color.brighten(by: 20)
        accessor.write(color, at: i)
    }
    print(
        "Process \(getpid()) brightened 1,500,000 bytes at offset 4,000,000: \(before) -> \(accessor.read(MyColor.self, at: 0))"
    )
    try accessor.close()
} catch  where error.code == .notFound {
    print("The image file does not exist. Run brighten-image first.")
    exit(1)
} catch {
    print("brighten-region: \(error)")
    exit(1)
}
