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
    @Flag(help: "Collect holders of dead processes first.") var gc = false

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
                let holders = registry.holders(of: entry)
                let alive = holders.filter(\.isAlive).count
                out.line(
                    entry.name.padding(24) + "\(entry.kind)".padding(14) + String(entry.length).padding(12)
                        + String(entry.offset).padding(10) + "\(alive) live, \(holders.count - alive) dead".padding(16)
                        + entry.object)
            }
            out.flush()
        } catch {
            complain(error.description)
            throw ExitCode(error.code == .corrupt ? ExitStatus.fileProblem.rawValue : ExitStatus.cannotRead.rawValue)
        }
    }
}
