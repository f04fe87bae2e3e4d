// A registry entry's bytes in LMDB, validated on decode: a damaged or hostile entry is an
// error, never a trap.

import Glibc
import MemoryMappedFiles
import Synchronization

extension RegistryEntry.Kind {
    /// The kind in words, with its article, for messages: "a shared-memory map", "an event".
    var withArticle: String {
        switch self {
        case .sharedMemory: return "a shared-memory map"
        case .file: return "a file map"
        case .mutex: return "a mutex"
        case .event: return "an event"
        }
    }
}

// MARK: - Encoding (validated on decode)

extension RegistryEntry {
    /// Version 3 stores the entry's slot where versions 1 and 2 listed holders (docs/REGISTRY.md);
    /// a version 3 registry lives in a boot directory of its own, so it never meets the others.
    static let formatVersion: UInt8 = 3

    /// The entry as LMDB stores it (SPI for the fuzz tests).
    package func encoded() -> [UInt8] {
        var bytes: [UInt8] = [
            Self.formatVersion, kind.rawValue, UInt8(MemoryMappedFileAccess.allCases.firstIndex(of: access)!), 0,
        ]
        func append<T: FixedWidthInteger>(_ value: T) {
            unsafe withUnsafeBytes(of: value.littleEndian) { unsafe bytes += $0 }
        }
        append(UInt64(offset))
        append(UInt64(length))
        append(createdNanoseconds)
        let objectBytes = Array(object.utf8)
        append(UInt16(objectBytes.count))
        bytes += objectBytes
        append(slot)
        let nameBytes = Array(name.utf8)
        append(UInt16(nameBytes.count))
        bytes += nameBytes
        return bytes
    }

    /// The entry stored for `name`: decoded, and checked to be this name's (a long name's key is
    /// a hash, so another name could share it; that is refused rather than confused).
    static func decode(_ bytes: [UInt8], named name: String) throws(RegistryError) -> RegistryEntry {
        let entry = try decode(bytes, name: name, path: String(name.prefix(64)))
        guard entry.name == name else {
            throw RegistryError(
                .nameExists, operation: "readEntry", path: String(name.prefix(64)),
                message: "another name shares this long name's key (a 128-bit hash collision); choose another name")
        }
        return entry
    }

    /// The entry stored under an LMDB key, when listing.
    static func decode(_ bytes: [UInt8], key: [UInt8], path: String) throws(RegistryError) -> RegistryEntry {
        try decode(bytes, name: String(decoding: key, as: UTF8.self), path: path)
    }

    /// Decodes an entry as LMDB stores it, validating every field, refusing anything malformed
    /// with `corrupt` (SPI for the fuzz tests). `name` is the name the entry must carry.
    package static func decode(
        _ bytes: [UInt8], name: String, path: String
    ) throws(RegistryError) -> RegistryEntry {
        func corrupt(_ message: String) -> RegistryError {
            RegistryError(
                .corrupt, operation: "readEntry", path: path,
                message: "the registry entry for '\(name)' is damaged: \(message)")
        }
        var position = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws(RegistryError) -> T {
            guard position + MemoryLayout<T>.size <= bytes.count else { throw corrupt("it ends early") }
            var value = T.zero
            unsafe withUnsafeMutableBytes(of: &value) {
                unsafe $0.copyBytes(from: bytes[position..<position + MemoryLayout<T>.size])
            }
            position += MemoryLayout<T>.size
            return T(littleEndian: value)
        }
        let version = try read(UInt8.self)
        guard version == formatVersion else { throw corrupt("unknown entry version \(version)") }
        guard let kind = Kind(rawValue: try read(UInt8.self)) else { throw corrupt("unknown kind") }
        let accessIndex = Int(try read(UInt8.self))
        guard accessIndex < MemoryMappedFileAccess.allCases.count else { throw corrupt("unknown access") }
        _ = try read(UInt8.self)
        let offset = try read(UInt64.self), length = try read(UInt64.self), created = try read(UInt64.self)
        guard offset <= UInt64(Int.max), length <= UInt64(Int.max) - offset else {
            throw corrupt("offset or length out of range")
        }
        let objectLength = Int(try read(UInt16.self))
        guard position + objectLength <= bytes.count,
            let object = String(validating: bytes[position..<position + objectLength], as: UTF8.self), !object.isEmpty
        else { throw corrupt("the object name is not valid UTF-8") }
        position += objectLength
        let slot = try read(UInt64.self)
        guard slot >= Registry.firstSlot, slot < UInt64(Int64.max) else { throw corrupt("its slot is out of range") }
        let nameLength = Int(try read(UInt16.self))
        guard nameLength >= 1, position + nameLength <= bytes.count,
            let stored = String(validating: bytes[position..<position + nameLength], as: UTF8.self),
            !stored.utf8.contains(0)
        else { throw corrupt("the stored name is not 1 or more bytes of UTF-8 without NUL") }
        position += nameLength
        guard position == bytes.count else { throw corrupt("it has trailing bytes") }
        return RegistryEntry(
            name: stored, kind: kind, object: object, offset: Int(offset), length: Int(length),
            access: MemoryMappedFileAccess.allCases[accessIndex], createdNanoseconds: created, slot: slot)
    }
}
