import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

/// Runs `body` and returns the MappedFileError it throws, or nil if it succeeds.
func mappedError<R: ~Copyable>(
    _ body: () throws -> R, sourceLocation: SourceLocation = #_sourceLocation
) -> MappedFileError? {
    do {
        _ = try body()
        return nil
    } catch let error as MappedFileError {
        return error
    } catch {
        Issue.record("expected a MappedFileError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Checks that an exit test's child trapped with `message` on stderr (not, say, by throwing).
func expectTrapMessage(
    _ result: ExitTest.Result?, _ message: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let standardError = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    #expect(standardError.contains(message), "stderr: \(standardError)", sourceLocation: sourceLocation)
}

/// Whether the tests were built by `make sanitize` (AddressSanitizer or ThreadSanitizer).
#if MAPPED_RECORDS_ASAN || MAPPED_RECORDS_TSAN
let underSanitizer = true
#else
let underSanitizer = false
#endif
