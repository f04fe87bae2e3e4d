import Glibc
import RecordTable

/// Buffered standard output. A closed pipe (`mrec dump … | head`) ends the tool quietly with
/// status 0, as `cat` does.
struct Output {
    private var buffer: [UInt8] = []

    init() {
        signal(SIGPIPE, SIG_IGN)
        buffer.reserveCapacity(1 << 16)
    }

    mutating func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func line(_ text: String = "") {
        write(text)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        var start = 0
        while start < buffer.count {
            let written = buffer[start...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                exit(errno == EPIPE ? 0 : 3)
            }
            start += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// One line on standard error.
func complain(_ text: String) {
    let line = "mrec: " + text + "\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

/// Whether standard error is a terminal (for progress bars).
var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

/// Exit statuses, as docs/MREC.md documents them.
enum ExitStatus: Int32 {
    case ok = 0
    /// The file has problems: damaged, foreign, a newer version, a bad record.
    case fileProblem = 1
    /// The command line is wrong.
    case usage = 2
    /// The file or registry cannot be read: missing, permission denied, an I/O error.
    case cannotRead = 3
}

extension RecordTableError {
    /// The exit status for this error.
    var exitStatus: ExitStatus {
        switch code {
        case .notATable, .byteOrderMismatch, .unsupportedVersion, .corrupt, .schemaMismatch, .truncated: return .fileProblem
        case .invalidArgument: return .usage
        default: return .cannotRead
        }
    }
}

// MARK: - Formatting values

extension FieldValue {
    /// The value in a CSV cell: quoted when it holds a comma, a quote or a line break.
    var csv: String {
        let text = description
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
    }

    /// The value in JSON: numbers, booleans, strings, arrays; NaN and infinities are null.
    var json: String {
        switch self {
        case .int, .uint: return description
        case .float(let value): return value.isFinite ? description : "null"
        case .bool(let value): return value ? "true" : "false"
        case .invalidBool(let byte): return "{\"invalidBool\":\(byte)}"
        case .bytes, .string: return jsonString(description)
        case .array(let values): return "[" + values.map(\.json).joined(separator: ",") + "]"
        }
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20: result += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
