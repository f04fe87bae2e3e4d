// Counts of open maps and views, and the leak report that debug builds print at exit.

import Glibc
import Synchronization

/// Counts of open maps and views, for finding leaks.
///
/// Debug builds print a warning at exit when any map or view was never closed.
package enum MappingDiagnostics {
    private static let openMaps = Atomic<Int>(0)
    private static let openViews = Atomic<Int>(0)
    #if DEBUG
    private static let exitReport: Void = {
        atexit {
            let maps = MappingDiagnostics.openMapCount
            let views = MappingDiagnostics.openViewCount
            if maps > 0 || views > 0 {
                let warning = "MemoryMappedFiles: \(maps) map(s) and \(views) view(s) were never closed (leaked?)\n"
                _ = unsafe warning.withCString { unsafe system_write(STDERR_FILENO, $0, strlen($0)) }
            }
        }
    }()
    #endif

    /// Maps (open descriptors) in this process that are not closed yet.
    package static var openMapCount: Int { openMaps.load(ordering: .relaxed) }
    /// Views (mappings) in this process that are not closed yet.
    package static var openViewCount: Int { openViews.load(ordering: .relaxed) }

    static func mapOpened() {
        #if DEBUG
        _ = exitReport
        #endif
        openMaps.add(1, ordering: .relaxed)
    }
    static func mapClosed() { openMaps.subtract(1, ordering: .relaxed) }
    static func viewOpened() { openViews.add(1, ordering: .relaxed) }
    static func viewClosed() { openViews.subtract(1, ordering: .relaxed) }
}
