import ArgumentParser
import Glibc
import MappedRegistry
import NamedTables
import RecordTable

/// The demo's record: the 32-byte record of docs/PERFORMANCE.md.
@MappedRecord
struct DemoPoint: Equatable {
    var id: Int64
    var x: Double
    var y: Double
    var flags: Int32
    var tag: Int32

    /// The record the writer appends at `index`; readers check every record against it.
    init(index: Int) {
        id = Int64(index)
        x = Double(index) * 0.5
        y = Double(index % 1000)
        flags = Int32(index % 7)
        tag = Int32(index % 3)
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show mrec at work: a writer and two reader processes share a table by name.",
        discussion: """
            The demo uses its own registry inside the directory, never yours. Run it again at will.
            Examples:
              mrec demo
              mrec demo --directory /tmp/demo --records 1000000
            """)

    @Option(help: "Where the table and the demo's registry go.") var directory = "mrec-demo"
    @Option(help: "How many records the writer appends.") var records = 200_000

    static let name = "demo.points"

    func validate() throws {
        guard records > 0, records <= 100_000_000 else {
            throw ValidationError("--records must be from 1 to 100000000")
        }
    }

    func run() throws {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            complain("cannot create the directory '\(directory)': \(String(cString: strerror(errno)))")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        let table = directory + "/points.mrec"
        let registry = directory + "/registry"
        try removeEarlierDemoTable(table)
        say("mrec demo: one writer and two reader processes share a table by name.")
        say("  table     \(table)")
        say("  registry  \(registry) (the demo's own)")
        say("")
        say("1. The writer creates the table, publishes it as '\(Self.name)' and appends \(records) records,")
        say("   committing every \(DemoWriter.batch); the readers open it by name while it grows.")

        var writer = try ChildProcess.spawn(
            ["demo-writer", table, "--registry", registry, "--records", String(records)], pipes: true)
        guard let first = writer.readLine(), first.hasPrefix("published") else {
            complain("the writer did not start; see its message above")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        say("   writer   (pid \(writer.pid)): created and published the table")
        let readers = try (1...2).map { number in
            try ChildProcess.spawn([
                "demo-reader", "--registry", registry, "--records", String(records), "--number", String(number),
            ])
        }
        let writerDone = writer.readLine() ?? "the writer ended early"
        say("   writer   (pid \(writer.pid)): \(writerDone)")
        var failed = false
        for reader in readers where reader.wait() != 0 { failed = true }

        say("")
        say("2. mrec names --registry \(registry)   (while the writer still holds the name)")
        try run(Names.self, ["--registry", registry])
        writer.closeInput()
        if writer.wait() != 0 { failed = true }

        say("")
        say("3. mrec info \(table)")
        try run(Info.self, [table])
        say("")
        say("4. mrec dump --limit 5 \(table)")
        try run(Dump.self, ["--limit", "5", table])
        say("")
        say("5. mrec verify \(table)")
        try run(Verify.self, [table])
        say("")
        say("The table stays in \(table). Try:")
        say("  mrec dump --format csv --range 1000..<1010 \(table)")
        say("  mrec schema --numpy \(table)")
        guard !failed else {
            complain("a demo process failed; see its message above")
            throw ExitCode(ExitStatus.fileProblem.rawValue)
        }
    }

    /// Removes the table of an earlier `mrec demo` at `path`, and nothing else: a file that is
    /// not a table the demo made (its metadata says so) is left alone, and the demo stops.
    func removeEarlierDemoTable(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // nothing there
        let isDemoTable =
            (status.st_mode & S_IFMT) == S_IFREG
            && (try? DynamicRecordTable.open(path: path))?.metadata.contains {
                $0.key == DemoWriter.madeByKey && $0.value == DemoWriter.madeByValue
            } == true
        guard isDemoTable else {
            complain("\(path) exists and is not a table made by mrec demo; it is left as it is")
            complain("choose another --directory, or move the file away")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        guard unlink(path) == 0 else {
            complain("cannot remove the earlier demo table \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
    }

    /// Runs another subcommand in this process, as if typed.
    func run<Command: ParsableCommand>(_: Command.Type, _ arguments: [String]) throws {
        var command = try Command.parse(arguments)
        try command.run()
    }
}

/// Writes one line to standard output at once (child processes write to it too).
func say(_ text: String) {
    var out = Output()
    out.line(text)
    out.flush()
}

struct DemoWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-writer", abstract: "The demo's writer process.", shouldDisplay: false)

    @Argument var file: String
    @Option var registry: String
    @Option var records: Int

    static let batch = 20_000
    /// The metadata that marks a table as the demo's own, so a later run may replace it.
    static let madeByKey = "made by"
    static let madeByValue = "mrec demo"

    func run() throws {
        do {
            let registry = try Registry.open(directory: registry)
            let table = try RecordTable<DemoPoint>.create(path: file, metadata: [Self.madeByKey: Self.madeByValue])
            try table.publish(as: Demo.name, registry: registry)  // the table keeps the name until it closes
            say("published")
            var batch: [DemoPoint] = []
            for start in stride(from: 0, to: records, by: Self.batch) {
                batch = (start..<min(records, start + Self.batch)).map(DemoPoint.init(index:))
                try table.append(contentsOf: batch)
                try table.commit()
                usleep(20_000)  // slow enough for the readers to watch it grow
            }
            say("appended and committed \(table.count) records; it holds the name until step 2 is over")
            // The name lives while the table is open: until the demo closes our stdin.
            var byte: UInt8 = 0
            while read(STDIN_FILENO, &byte, 1) > 0 {}
            try table.close()
        } catch {
            complain("writer: \(error)")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
    }
}

struct DemoReader: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-reader", abstract: "The demo's reader process.", shouldDisplay: false)

    @Option var registry: String
    @Option var records: Int
    @Option var number: Int

    func run() throws {
        do {
            let registry = try Registry.open(directory: registry)
            let table = try RecordTable<DemoPoint>.open(name: Demo.name, access: .readOnly, registry: registry)
            let seenAtOpen = table.count
            var checked = 0, bad = 0, sum = 0.0
            let deadline = Duration.seconds(60)
            let clock = ContinuousClock(), start = clock.now
            while checked < records && clock.now - start < deadline {
                let count = try table.waitForRecords(beyond: checked, timeout: .milliseconds(100))
                for index in checked..<count {
                    let point = table[index]
                    if point != DemoPoint(index: index) { bad += 1 }
                    sum += point.x
                }
                checked = max(checked, count)
            }
            say(
                "   reader \(number) (pid \(getpid())): opened '\(Demo.name)' by name with \(seenAtOpen) records, "
                    + "followed the writer to \(checked), \(bad) bad records, sum of x = \(sum)")
            try table.close()
            if bad > 0 || checked < records { throw ExitCode(ExitStatus.fileProblem.rawValue) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            complain("reader \(number): \(error)")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
    }
}

// MARK: - Child processes

/// A copy of this executable running a subcommand, optionally with its stdin and stdout on pipes.
struct ChildProcess {
    let pid: pid_t
    private var input: Int32 = -1
    private var output: Int32 = -1
    private var pending: [UInt8] = []

    /// Starts `/proc/self/exe arguments…`.
    static func spawn(_ arguments: [String], pipes: Bool = false) throws -> ChildProcess {
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if pipes {
            guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else {
                complain("cannot make a pipe: \(String(cString: strerror(errno)))")
                throw ExitCode(ExitStatus.cannotRead.rawValue)
            }
            // Close-on-exec: the readers spawned later must not hold the writer's pipes open.
            for end in toChild + fromChild { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, toChild[0], STDIN_FILENO)
            posix_spawn_file_actions_adddup2(&actions, fromChild[1], STDOUT_FILENO)
        }
        let executable = "/proc/self/exe"
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        if pipes {
            close(toChild[0])
            close(fromChild[1])
        }
        guard result == 0 else {
            complain("cannot start a demo process: \(String(cString: strerror(result)))")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        var child = ChildProcess(pid: pid)
        child.input = toChild[1]
        child.output = fromChild[0]
        return child
    }

    private init(pid: pid_t) { self.pid = pid }

    /// The next line the child writes, without its newline; nil at the end.
    mutating func readLine() -> String? {
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let got = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return nil }
            pending += chunk[..<got]
        }
    }

    /// Closes the child's stdin: the demo writer takes that as the sign to withdraw its name.
    mutating func closeInput() {
        if input >= 0 { close(input) }
        input = -1
    }

    /// Waits for the child; its exit status, or 128 + the signal that ended it.
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if output >= 0 { close(output) }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
