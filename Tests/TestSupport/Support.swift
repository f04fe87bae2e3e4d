import CMappedShims
import Glibc

// Shared by the test targets and the helper process: temporary directories, real child
// processes, and plain-syscall file checks that bypass the library under test.

/// A directory of its own for one test, removed afterwards.
public final class TemporaryDirectory {
    public let path: String

    public init() {
        var template = Array("/tmp/mapped-records-test-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit { _ = run(["/bin/rm", "-rf", path]) }

    public func file(_ name: String) -> String { path + "/" + name }
}

/// How a child process ended.
public enum Termination: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)
}

/// A real child process with its stdin and stdout on pipes.
public final class ChildProcess {
    public let pid: pid_t
    private let input: Int32
    private let output: Int32
    /// The read end of the child's stdout, for poll(2); lines already read into the buffer are not there.
    public var outputDescriptor: Int32 { output }
    private var buffered: [UInt8] = []
    private var status: Termination?

    /// Starts `arguments[0]` with the rest as arguments. `inherit` is handed to the child as
    /// descriptor 3; `environment` entries (`NAME=value`) are added to this process's.
    public init(_ arguments: [String], inherit descriptor: Int32? = nil, environment extra: [String] = []) {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        // Close-on-exec from the start: a child another thread spawns meanwhile must not inherit
        // these ends (it would hold this child's stdout open, and `readAll` would wait for it).
        precondition(cmapped_pipe_cloexec(&toChild) == 0 && cmapped_pipe_cloexec(&fromChild) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        if let descriptor { posix_spawn_file_actions_adddup2(&actions, descriptor, 3) }
        let cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        // No backtraces from children that are meant to crash; the parent checks how they ended.
        var environment = (["SWIFT_BACKTRACE=enable=no"] + extra).map { strdup($0) }
        var index = 0
        while let entry = environ[index] { environment.append(strdup(entry)); index += 1 }
        environment.append(nil)
        defer { environment.forEach { free($0) } }
        // The spawning thread may be a Dispatch worker, which blocks every signal; a child would
        // inherit that mask and never see SIGINT or SIGTERM. Start it with none blocked, default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, cArguments, environment)
        posix_spawnattr_destroy(&attributes)
        posix_spawn_file_actions_destroy(&actions)
        precondition(result == 0, "posix_spawn \(arguments[0]) failed: \(result)")
        close(toChild[0])
        close(fromChild[1])
        self.pid = pid
        self.input = toChild[1]
        self.output = fromChild[0]
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
        close(input)
        close(output)
    }

    /// The next line of the child's stdout, or nil at its end.
    public func readLine() -> String? {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if count <= 0 {
                guard !buffered.isEmpty else { return nil }
                defer { buffered = [] }
                return String(decoding: buffered, as: UTF8.self)
            }
            buffered += chunk[..<count]
        }
    }

    /// The rest of the child's stdout.
    public func readAll() -> String {
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    public func writeLine(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { write(input, $0, strlen($0)) }
    }

    /// Waits for the child to end.
    @discardableResult
    public func wait() -> Termination {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        let termination: Termination = raw & 0x7f == 0 ? .exited((raw >> 8) & 0xff) : .signaled(raw & 0x7f)
        status = termination
        return termination
    }
}

/// Runs a command to its end; returns how it ended and its stdout.
@discardableResult
public func run(
    _ arguments: [String], inherit descriptor: Int32? = nil, environment: [String] = []
) -> (Termination, String) {
    let child = ChildProcess(arguments, inherit: descriptor, environment: environment)
    let output = child.readAll()
    return (child.wait(), output)
}

/// The helper executable that SwiftPM builds next to the test binary.
public let helperPath: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    precondition(count > 0)
    let executable = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var directory = executable[..<executable.lastIndex(of: "/")!]
    // The test binary may sit inside an .xctest bundle directory.
    if directory.hasSuffix(".xctest") { directory = directory[..<directory.lastIndex(of: "/")!] }
    return directory + "/mapped-test-helper"
}()

public func helper(_ arguments: String...) -> [String] { [helperPath] + arguments }

/// The path of another executable built beside the helper, such as an example.
public func builtExecutable(_ name: String) -> String {
    String(helperPath.dropLast("mapped-test-helper".count)) + name
}

/// Writes `bytes` to a new file at `path`.
public func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
    let descriptor = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode)
    precondition(descriptor >= 0, "open \(path): \(errno)")
    defer { close(descriptor) }
    precondition(bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } == bytes.count)
}

/// Reads `count` bytes at `offset` with plain pread, bypassing any mapping.
public func preadBytes(_ path: String, offset: Int, count: Int) -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    precondition(descriptor >= 0, "open \(path): \(errno)")
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: count)
    let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
    return Array(bytes[..<max(0, read)])
}

/// A whole file, read to its end: for /proc files, whose size is unknown in advance.
public func readWholeFile(_ path: String) -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return [] }
    defer { close(descriptor) }
    var result: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if got <= 0 { return result }
        result += chunk[..<got]
    }
}

public func preadUInt64(_ path: String, offset: Int) -> UInt64 {
    preadBytes(path, offset: offset, count: 8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
}

public func fileStatus(_ path: String) -> stat? {
    var status = stat()
    return stat(path, &status) == 0 ? status : nil
}

public func fileExists(_ path: String) -> Bool { fileStatus(path) != nil }

public let isRoot = getuid() == 0

/// The lines of /proc/self/maps that name `path`.
public func mappingsOf(_ path: String) -> [String] {
    let (_, maps) = run(["/bin/cat", "/proc/\(getpid())/maps"])
    return maps.split(separator: "\n").filter { $0.hasSuffix(path) }.map(String.init)
}

/// Mounts a tmpfs of `size` (such as "1m") at a new folder in `directory`, runs `body` with
/// its path, and unmounts it. Returns false, running nothing, where mounting is not allowed
/// (it needs root); the caller then reports the test as skipped.
@discardableResult
public func withSmallFileSystem(
    in directory: TemporaryDirectory, size: String, _ body: (String) throws -> Void
) rethrows -> Bool {
    let mountPoint = directory.file("small-\(size)")
    guard mkdir(mountPoint, 0o700) == 0 else { return false }
    let (mounted, _) = run(["/bin/mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint])
    guard mounted == .exited(0) else {
        print("skipped: cannot mount a tmpfs here (needs root); docs/CAVEATS.md describes the manual check")
        return false
    }
    defer { run(["/bin/umount", mountPoint]) }
    try body(mountPoint)
    return true
}

/// The names in a directory, sorted, with plain syscalls; nil if it cannot be read.
public func directoryListing(_ path: String) -> [String]? {
    guard let stream = opendir(path) else { return nil }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on one machine.
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
