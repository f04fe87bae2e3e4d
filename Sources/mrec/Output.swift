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
        newline()
    }

    /// Ends a line; the buffer goes out when it holds 64 KiB.
    mutating func newline() {
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func byte(_ value: UInt8) { buffer.append(value) }

    /// Two lowercase hex digits.
    mutating func hexByte(_ value: UInt8) {
        let digits: StaticString = "0123456789abcdef"
        buffer.append(digits.utf8Start[Int(value >> 4)])
        buffer.append(digits.utf8Start[Int(value & 15)])
    }

    /// An integer in decimal, without making a String.
    mutating func decimal(_ value: UInt64, negative: Bool = false) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var remaining = value, used = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            repeat {
                used += 1
                scratch[24 - used] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            } while remaining > 0
            if negative { buffer.append(UInt8(ascii: "-")) }
            buffer.append(contentsOf: scratch[(24 - used)...])
        }
    }

    /// A CSV cell holding `text`: quoted when it holds a comma, a quote or a line break.
    mutating func csvCell(_ text: String) {
        guard text.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else {
            return write(text)
        }
        buffer.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\"") { buffer.append(byte) }
            buffer.append(byte)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// A CSV cell holding `value`; numbers go straight into the buffer.
    mutating func csvCell(_ value: FieldValue) {
        switch value {
        case .int(let number): decimal(number.magnitude, negative: number < 0)
        case .uint(let number): decimal(number)
        default: csvCell(value.description)
        }
    }

    mutating func flush() {
        var start = 0
        while start < buffer.count {
            let written = buffer[start...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                // A closed pipe is the reader saying it has enough; leave at once, as cat does.
                _exit(errno == EPIPE ? 0 : 3)
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
        case .notATable, .byteOrderMismatch, .unsupportedVersion, .corrupt, .schemaMismatch, .truncated:
            return .fileProblem
        case .invalidArgument: return .usage
        default: return .cannotRead
        }
    }
}

// MARK: - Formatting values

extension FieldValue {
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
        case _ where scalar.value < 0x20:
            result +=
                "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
