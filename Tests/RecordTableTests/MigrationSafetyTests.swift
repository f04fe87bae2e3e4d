import Glibc
import TestSupport
import Testing

@testable import RecordTable

// Issue #24, items 1, 2 and 4: a migration never loses committed records, permissions or
// links. Each test failed before its fix.

@Suite("Migration safety: waiting writers, concurrent migrations, ownership, links", .timeLimit(.minutes(3)))
struct MigrationSafetyTests {
    let directory = TemporaryDirectory()

    func writeOld(_ count: Int, name: String = "old.mrec") throws -> String {
        let path = directory.file(name)
        let table = try RecordTable<OldSample>.create(path: path)
        try table.append(contentsOf: (0..<count).map { OldSample(id: Int64($0)) })
        try table.close()
        return path
    }

    func writeSamples(_ count: Int, at path: String) throws {
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<count).map { Sample(id: Int64($0)) })
        try table.close()
    }

    @Test("a writer that waited for the lock while another file took the path appends to the new file")
    func waitingWriterFollowsTheReplacement() throws {
        let path = directory.file("t.mrec")
        try writeSamples(1000, at: path)
        let holder = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(10))
        let writer = ChildProcess(helper("table-append-waiting", path, "50"))
        #expect(writer.readLine() == "opening")
        usleep(300_000)  // it waits for the lock of the file it opened
        // What a migration does while it holds the lock: a whole new table renamed over the path.
        let replacement = directory.file("replacement.mrec")
        try writeSamples(1000, at: replacement)
        #expect(rename(replacement, path) == 0)
        try holder.close()
        #expect(writer.readLine() == "appended 1050")
        #expect(writer.wait() == .exited(0))
        let table = try RecordTable<Sample>.open(path: path)
        #expect(table.count == 1050)
        #expect((0..<1050).allSatisfy { table[$0].isValid(at: $0) })
    }

    @Test("two instances of an upgraded app migrate at start-up and append: every record of both is kept")
    func twoInstancesMigrateAtStartUp() throws {
        let path = try writeOld(1000, name: "shared.mrec")
        let holder = try RecordTable<OldSample>.open(path: path, access: .readWrite, waitForWriter: .seconds(10))
        let first = ChildProcess(helper("table-migrate-then-append", path, "100"))
        let second = ChildProcess(helper("table-migrate-then-append", path, "50"))
        #expect(first.readLine() == "starting" && second.readLine() == "starting")
        usleep(300_000)  // both wait for the old table's lock
        try holder.close()
        let outcomes = [first.readLine() ?? "", second.readLine() ?? ""]
        #expect(first.wait() == .exited(0) && second.wait() == .exited(0), "\(outcomes)")
        #expect(outcomes.filter { $0.hasPrefix("migrated") }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0.hasPrefix("found it migrated") }.count == 1, "\(outcomes)")
        let table = try RecordTable<Sample>.open(path: path)
        #expect(table.count == 1150)
        for index in 0..<1150 {
            let record = table[index]
            guard record.id == Int64(index) && record.check == Sample.expectedCheck(Int64(index)) else {
                Issue.record("record \(index) is \(record)")
                break
            }
        }
    }

    @Test("a migration keeps the table's mode (0600, 0640, 0660) and its doorbell stays as private")
    func modeIsKept() throws {
        for mode: mode_t in [0o600, 0o640, 0o660] {
            let path = try writeOld(10, name: "mode-\(String(mode, radix: 8)).mrec")
            #expect(chmod(path, mode) == 0)
            #expect(try RecordTable<Sample>.migrate(path: path).migrated)
            #expect(fileStatus(path).map { $0.st_mode & 0o7777 } == mode, "mode \(String(mode, radix: 8))")
            // The writer's doorbell segment gives no more than the file does.
            let table = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(10))
            let segmentMode = doorbellSegmentMode(path)
            try table.close()
            if let segmentMode {
                #expect(
                    segmentMode & 0o007 == 0,
                    "the doorbell of a \(String(mode, radix: 8)) table is \(String(segmentMode, radix: 8))")
            }
        }
    }

    @Test("a migration keeps the table's group, and root keeps another user's table theirs")
    func ownerAndGroupAreKept() throws {
        guard isRoot else {
            print("skipped: needs root to act as two users (root and uid 65534)")
            return
        }
        #expect(chmod(directory.path, 0o1777) == 0)
        let grouped = try writeOld(10, name: "grouped.mrec")
        #expect(chown(grouped, 0, 65534) == 0 && chmod(grouped, 0o660) == 0)
        #expect(try RecordTable<Sample>.migrate(path: grouped).migrated)
        #expect(ownerGroupMode(grouped) == "0:65534 660")

        let theirs = try writeOld(10, name: "theirs.mrec")
        #expect(chown(theirs, 65534, 65534) == 0 && chmod(theirs, 0o600) == 0)
        #expect(try RecordTable<Sample>.migrate(path: theirs).migrated)
        #expect(ownerGroupMode(theirs) == "65534:65534 600")
        let (end, output) = run(helper("append-as-nobody", theirs))
        #expect(end == .exited(0) && output == "appended", "the owner can no longer write its table: \(output)")
    }

    @Test("a user who could not keep the owner is refused before anything is written")
    func foreignTableIsRefused() throws {
        guard isRoot else {
            print("skipped: needs root to act as two users (root and uid 65534)")
            return
        }
        #expect(chmod(directory.path, 0o1777) == 0)
        let path = try writeOld(10, name: "roots.mrec")
        #expect(chmod(path, 0o666) == 0)
        let before = readWholeFile(path)
        let (end, output) = run(helper("migrate-as-nobody", path))
        #expect(end == .exited(0) && output.hasPrefix("refused permissionDenied"), "\(output)")
        #expect(output.contains("uid 0"), "\(output)")
        let unchanged = sameBytes(readWholeFile(path), before)
        #expect(unchanged, "the table changed")
        #expect(fileStatus(path)?.st_uid == 0)
    }

    @Test("a migration in a directory the user may not write names the directory, and changes nothing")
    func unwritableDirectoryIsNamed() throws {
        guard isRoot else {
            print("skipped: needs root to act as two users (root and uid 65534)")
            return
        }
        #expect(chmod(directory.path, 0o755) == 0)
        let path = try writeOld(10, name: "owned-by-nobody.mrec")
        #expect(chown(path, 65534, 65534) == 0)
        let before = readWholeFile(path)
        let (end, output) = run(helper("migrate-as-nobody", path))
        #expect(end == .exited(0), "\(output)")
        #expect(
            output.hasPrefix("refused permissionDenied")
                && output.contains("no permission to create a file in the directory '\(directory.path)'"), "\(output)")
        let unchanged = sameBytes(readWholeFile(path), before)
        #expect(unchanged, "the table changed")
    }

    @Test("a migration copies the table's extended attributes (ACLs, user.*)")
    func extendedAttributesAreKept() throws {
        let path = try writeOld(10, name: "tagged.mrec")
        let (set, setOutput) = run([
            "/usr/bin/python3", "-c", "import os, sys; os.setxattr(sys.argv[1], 'user.owner-team', b'pricing')", path,
        ])
        guard set == .exited(0) else {
            print("skipped: this file system keeps no user extended attributes (\(setOutput))")
            return
        }
        #expect(try RecordTable<Sample>.migrate(path: path).migrated)
        let (_, value) = run([
            "/usr/bin/python3", "-c", "import os, sys; print(os.getxattr(sys.argv[1], 'user.owner-team').decode())",
            path,
        ])
        #expect(value == "pricing")
    }

    @Test("migrating through a symbolic link migrates the table it names and keeps the link")
    func symbolicLinkIsFollowed() throws {
        let target = try writeOld(10, name: "trades-2026.mrec")
        let link = directory.file("current.mrec")
        #expect(symlink("trades-2026.mrec", link) == 0)
        #expect(try RecordTable<Sample>.migrate(path: link).migrated)
        var status = stat()
        #expect(lstat(link, &status) == 0 && status.st_mode & S_IFMT == S_IFLNK, "the link became a regular file")
        #expect(try RecordTable<Sample>.open(path: target).count == 10)
        #expect(directoryListing(directory.path) == ["current.mrec", "trades-2026.mrec"])
    }

    @Test("a table with a second hard link is refused, naming the link count; nothing changes")
    func hardLinksAreRefused() throws {
        let path = try writeOld(10, name: "linked.mrec")
        #expect(link(path, directory.file("other-name.mrec")) == 0)
        let before = readWholeFile(path)
        let error = tableError { try RecordTable<Sample>.migrate(path: path) }
        #expect(
            error?.code == .invalidArgument && error?.message.contains("2 hard links") == true,
            "\(String(describing: error))")
        let unchanged = sameBytes(readWholeFile(path), before)
        #expect(unchanged, "the table changed")
        #expect(try RecordTable<OldSample>.open(path: directory.file("other-name.mrec")).count == 10)
    }
}

/// `uid:gid mode` of a file, the mode in octal.
func ownerGroupMode(_ path: String) -> String? {
    fileStatus(path).map { "\($0.st_uid):\($0.st_gid) " + String($0.st_mode & 0o7777, radix: 8) }
}

/// The mode of the doorbell segment that the table at `path`'s writer made, from
/// /proc/sysvipc/shm (the segment is found by the shm id the live area names); nil without one.
func doorbellSegmentMode(_ path: String) -> mode_t? {
    let word = preadUInt64(path, offset: DoorbellFormat.liveAreaOffset)
    guard word & 0xFFFF_FFFF != 0 else { return nil }
    let identifier = Int(word & 0xFFFF_FFFF) - 1
    let (_, listing) = run(["/bin/cat", "/proc/sysvipc/shm"])
    for line in listing.split(separator: "\n").dropFirst() {
        let columns = line.split(separator: " ", omittingEmptySubsequences: true)
        if columns.count > 2, Int(columns[1]) == identifier { return mode_t(columns[2], radix: 8) }
    }
    return nil
}
