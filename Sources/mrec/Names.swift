import ArgumentParser
import Glibc
import MappedRegistry
import RecordTable

struct Names: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the names in the registry, with their holders.",
        discussion: "Examples:\n  mrec names\n  mrec names --registry /tmp/my-registry --gc")

    @Option(help: "The registry directory (default: $MAPPED_REGISTRY, then a per-user directory).") var registry:
        String?
    @Flag(help: "First remove the names whose holders all died without closing.") var gc = false

    func run() throws {
        do {
            let registry = try Registry.open(directory: registry)
            var out = Output()
            if gc {
                let report = try registry.collectGarbage()
                out.line("collected \(report.deadHolders) dead holders; removed \(report.removedNames.count) names")
            }
            out.line(
                "NAME".padding(24) + "KIND".padding(14) + "SIZE".padding(12) + "OFFSET".padding(10)
                    + "HOLDERS".padding(16) + "OBJECT")
            for entry in try registry.entries() {
                // Processes, as the kernel's locks show them; "all dead": its holders died without closing.
                let holders = registry.holders(of: entry)
                let alive = holders.otherProcesses + (holders.handlesInThisProcess > 0 ? 1 : 0)
                let shown = holders.isHeld ? "\(max(alive, 1)) live, 0 dead" : "0 live, all dead"
                out.line(
                    entry.name.padding(24) + "\(entry.kind)".padding(14) + String(entry.length).padding(12)
                        + String(entry.offset).padding(10) + shown.padding(16) + entry.object)
            }
            out.flush()
        } catch {
            complain(error.description)
            throw ExitCode(error.code == .corrupt ? ExitStatus.fileProblem.rawValue : ExitStatus.cannotRead.rawValue)
        }
    }
}
