import Glibc
import MemoryMappedFiles

// The doorbell: how a writer wakes readers that wait for records, in other processes, without
// a system call per append while no one waits (docs/FORMAT.md, "Doorbell").
//
// - The futex word is the low half of the live word (offset 1552): it changes with every
//   publish, and every process that maps the table, read-only or not, can sleep on it.
// - Whether anyone sleeps is a *registration word* in a 4 KiB System V shared-memory segment
//   that the writer creates. The table's live area names it (shm id and creator uid). A reader
//   that may only read the table can still write the segment, whose mode gives read-write to
//   every class of user that may read the table. Nobody can shrink a System V segment (unlike a
//   file in /dev/shm, which anyone with write access could truncate to raise SIGBUS in the
//   writer), and the writer marks it for removal at once: the kernel frees it when the last
//   process detaches, so even a kill -9 leaves nothing behind.
//
// A sleeper registers the count it waits for (its *target*); the word keeps the smallest target
// of all sleepers, and the writer rings only when a publish reaches it. A follower that waits for
// a far count therefore costs the writer nothing until then.
//
// Ordering, the lost-wake-up argument:
//   writer (publish):  W1 store live word (release)    W2 load registration    W3 if count >= target (~word):
//                                                                               clear it, FUTEX_WAKE all
//   reader (sleep):    R1 load live word = seen         R2 lower the registration to its target (CAS)
//                      R3 membarrier(GLOBAL_EXPEDITED)  R4 FUTEX_WAIT(live word, low half of seen)
// W2 may run before W1 is visible (store buffering), which is why the reader pays for both sides:
// R3 runs a full barrier on every CPU that runs the (registered) writer. If that barrier falls
// before W1, R4 sees the new word (the kernel compares it atomically with going to sleep) and
// returns at once, and the reader re-checks the count; if it falls after W2, W2 sees a target no
// higher than the reader's and W3 wakes it if the count reaches it; it cannot fall between W1 and
// W2 without ordering W1 before R4 and R2 before W2. The writer pays one load and a compiler
// barrier per publish, no fence.
//   Clearing is a compare-and-exchange of the value it loaded: a reader that lowered the target
// after W2 keeps its registration. A reader whose target was above the one the writer cleared is
// woken too (every sleeper shares the futex word) and registers again. A reader whose registration
// the writer cleared without waking it for its own target registered after W2, so R3 orders W1
// before R4: it sees the new word and does not sleep.
//   A reader that crashes leaves its registration set: it costs the writer one wake-up when the
// count reaches its target, which clears it, and then nothing again.

/// Where the doorbell's parts live.
enum DoorbellFormat {
    /// In the live area: bits 0–31 the segment's shm id + 1 (0: no doorbell), bits 32–63 the
    /// effective uid of the writer that created it.
    @usableFromInline static let liveAreaOffset = TableFormat.liveOffset + 24
    /// The segment's size and its fields.
    static let segmentSize = 4096
    static let magic: UInt64 = 0x4C4C_4542_4345_524D  // "MRECBELL"
    static let magicOffset = 0
    static let deviceOffset = 8
    static let inodeOffset = 16
    static let writerProcessOffset = 24
    /// The registration word, alone in its cache line: 0 (no sleeper), or the bitwise complement
    /// of the smallest count any sleeper waits for. The complement makes the writer's test one
    /// compare, `count >= ~word`, that no count passes when the word is 0.
    static let registrationOffset = 64

    static func liveAreaWord(identifier: Int32, creator: uid_t) -> UInt64 {
        UInt64(UInt32(bitPattern: identifier) &+ 1) | UInt64(creator) << 32
    }

    /// Whether this process may use the doorbell: membarrier(2) must work (seccomp may forbid
    /// it; old kernels lack it), since the protocol's correctness rests on it. A writer registers
    /// for other processes' barriers once.
    static let barriersWork: Bool = system_membarrier_register() == 0

    /// The table file's device and inode, owner's group and mode.
    static func fileIdentity(_ descriptor: Int32) -> stat? {
        var status = stat()
        return system_fstat(descriptor, &status) == 0 ? status : nil
    }
}

/// A word that reads 0 forever: the registration word of a writer without a doorbell, so that
/// the publish path makes the same one load either way.
@usableFromInline nonisolated(unsafe) let noDoorbellRegistration: UnsafeMutableRawPointer = {
    // SAFETY: allocated once, never freed, only ever read (as 0).
    let word = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
    unsafe word.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
    return unsafe word
}()

/// The writer's side: the segment it created, attached until the table closes.
@safe final class WriterDoorbell {
    let segment: UnsafeMutableRawPointer
    let liveAreaWord: UInt64
    var registration: UnsafeMutableRawPointer { unsafe segment + DoorbellFormat.registrationOffset }

    private init(segment: UnsafeMutableRawPointer, liveAreaWord: UInt64) {
        unsafe self.segment = unsafe segment
        self.liveAreaWord = liveAreaWord
    }

    deinit { _ = unsafe system_shmdt(segment) }

    /// A doorbell for the table open on `descriptor`, or nil where the system offers none
    /// (no membarrier, no System V IPC, or the segment limit reached): readers then poll.
    static func make(forTableOn descriptor: Int32) -> WriterDoorbell? {
        guard DoorbellFormat.barriersWork, let file = DoorbellFormat.fileIdentity(descriptor) else { return nil }
        // Read-write for the owner, and for the group and others if they may read the table.
        var mode: Int32 = 0o600
        if file.st_mode & S_IRGRP != 0 { mode |= 0o060 }
        if file.st_mode & S_IROTH != 0 { mode |= 0o006 }
        let identifier = system_shmget_private(DoorbellFormat.segmentSize, IPC_CREAT | IPC_EXCL | mode)
        guard identifier >= 0 else { return nil }
        var status = shmid_ds()
        if system_shmctl(identifier, IPC_STAT, &status) == 0 {
            status.shm_perm.gid = file.st_gid  // the table's readers, not the writer's group
            _ = system_shmctl(identifier, IPC_SET, &status)
        }
        let attached = unsafe system_shmat(identifier, 0)
        // Marked for removal at once: it lives while someone has it attached, and no longer.
        _ = system_shmctl(identifier, IPC_RMID, &status)
        guard let segment = unsafe attached, Int(bitPattern: segment) != -1 else { return nil }
        unsafe segment.storeBytes(of: UInt64(file.st_dev), toByteOffset: DoorbellFormat.deviceOffset, as: UInt64.self)
        unsafe segment.storeBytes(of: UInt64(file.st_ino), toByteOffset: DoorbellFormat.inodeOffset, as: UInt64.self)
        unsafe segment.storeBytes(
            of: UInt32(bitPattern: system_getpid()), toByteOffset: DoorbellFormat.writerProcessOffset, as: UInt32.self)
        unsafe SharedAtomics.storeRelease(segment + DoorbellFormat.magicOffset, DoorbellFormat.magic)
        return unsafe WriterDoorbell(
            segment: segment,
            liveAreaWord: DoorbellFormat.liveAreaWord(identifier: identifier, creator: system_geteuid()))
    }

    /// The doorbell another appender of the table open on `descriptor` created and named with
    /// `named` in the live area, attached to ring it too; nil if it is gone or not what it claims.
    static func attach(named: UInt64, forTableOn descriptor: Int32) -> WriterDoorbell? {
        guard DoorbellFormat.barriersWork, let file = DoorbellFormat.fileIdentity(descriptor),
            let segment = unsafe DoorbellFormat.attachSegment(
                named: named, device: UInt64(file.st_dev), inode: UInt64(file.st_ino))
        else { return nil }
        return unsafe WriterDoorbell(segment: segment, liveAreaWord: named)
    }

    /// Clears the registration word `registered` that a publish reached (the caller then wakes
    /// every sleeper); a sleeper that lowered the target since keeps its registration.
    func clearRegistration(_ registered: UInt64) {
        _ = unsafe SharedAtomics.compareExchange(registration, expected: registered, desired: 0)
    }
}

/// A reader's side: the writer's segment, attached while it stays the one the live area names.
@safe final class DoorbellListener {
    private let device: UInt64
    private let inode: UInt64
    private var attachedFor: UInt64 = 0
    private var segment: UnsafeMutableRawPointer?

    /// A listener for the table open on `descriptor`.
    init(forTableOn descriptor: Int32) {
        let file = DoorbellFormat.fileIdentity(descriptor)
        device = file.map { UInt64($0.st_dev) } ?? 0
        inode = file.map { UInt64($0.st_ino) } ?? 0
    }

    deinit { detach() }

    private func detach() {
        if let segment = unsafe segment { _ = unsafe system_shmdt(segment) }
        unsafe segment = nil
        attachedFor = 0
    }

    /// Registers this reader as a sleeper until the count reaches `target`, through the doorbell
    /// that `liveAreaWord` names (read from this boot's live area). Returns false if there is no
    /// doorbell it can use: the caller then sleeps in short slices, since no one will wake it.
    func register(target: Int, liveAreaWord: UInt64) -> Bool {
        guard DoorbellFormat.barriersWork, liveAreaWord & 0xFFFF_FFFF != 0 else { return false }
        if liveAreaWord != attachedFor {
            detach()
            attach(liveAreaWord)
        }
        guard let segment = unsafe segment else { return false }
        // Lower the registered target to ours: the word holds the complement of the smallest
        // target, so lowering the target is raising the word.
        let word = unsafe segment + DoorbellFormat.registrationOffset
        let wanted = ~UInt64(max(0, min(target, LiveCount.maximum)))
        var current = unsafe SharedAtomics.loadAcquire(word)
        while current < wanted {
            let found = unsafe SharedAtomics.compareExchange(word, expected: current, desired: wanted)
            if found == current { break }
            current = found
        }
        // The reader's half of the asymmetric fence: see the argument at the top of this file.
        return system_membarrier_global() == 0
    }

    /// Attaches the segment `liveAreaWord` names now, if it is not the one attached: the first
    /// registration then costs no attach.
    func attach(ifNamed liveAreaWord: UInt64) {
        guard DoorbellFormat.barriersWork, liveAreaWord & 0xFFFF_FFFF != 0, liveAreaWord != attachedFor else { return }
        detach()
        attach(liveAreaWord)
    }

    /// Attaches the segment `liveAreaWord` names, if it is what it claims.
    private func attach(_ liveAreaWord: UInt64) {
        attachedFor = liveAreaWord
        unsafe segment = unsafe DoorbellFormat.attachSegment(named: liveAreaWord, device: device, inode: inode)
    }
}

extension DoorbellFormat {
    /// Attaches the segment that the live area's doorbell word `named` names, if it is what it
    /// claims: created by the uid the word gives, 4 KiB, and marked with the table's device and
    /// inode. Nil otherwise (or if it is gone).
    static func attachSegment(named: UInt64, device: UInt64, inode: UInt64) -> UnsafeMutableRawPointer? {
        let identifier = Int32(bitPattern: UInt32(truncatingIfNeeded: named) &- 1)
        var status = shmid_ds()
        guard named & 0xFFFF_FFFF != 0, system_shmctl(identifier, IPC_STAT, &status) == 0,
            status.shm_segsz == segmentSize,
            UInt64(status.shm_perm.cuid) == named >> 32,
            let attached = unsafe system_shmat(identifier, 0), Int(bitPattern: attached) != -1
        else { return nil }
        guard unsafe SharedAtomics.loadAcquire(attached + magicOffset) == magic,
            unsafe attached.load(fromByteOffset: deviceOffset, as: UInt64.self) == device,
            unsafe attached.load(fromByteOffset: inodeOffset, as: UInt64.self) == inode
        else {
            _ = unsafe system_shmdt(attached)
            return nil
        }
        return unsafe attached
    }
}

/// How a reader waits for records.
public enum WaitStrategy: Sendable, Hashable {
    /// Sleep until the writer rings (a futex): no CPU while idle, tens of microseconds to wake.
    case block
    /// Spin on the live count for the whole timeout: under a microsecond to notice, a whole core busy.
    case spin
    /// Spin for the duration given, then sleep.
    case spinThenBlock(Duration)

    var spinNanoseconds: UInt64 {
        switch self {
        case .block: return 0
        case .spin: return .max
        case .spinThenBlock(let duration): return duration.saturatingNanoseconds
        }
    }
}

/// The wait loop that ``TableStorage/waitForRecords(beyond:timeout:strategy:)`` and
/// ``TableUpdates`` share, over any view whose byte 0 is the file's byte 0.
enum RecordWaiting {
    /// The longest sleep: a writer that took the table over with a new doorbell wakes sleepers
    /// at once, but an old writer that had none never rings.
    static let longestSleep = Duration.seconds(1)
    static let longestSleepWithoutDoorbell = Duration.milliseconds(100)

    /// The live word, if the live area carries `bootIdentifier`; else nil. The identifier is
    /// loaded first, with acquire ordering, so the word read after it is at least as new as the
    /// invalidation a writer stores before it changes the identifier (docs/FORMAT.md, "Live area").
    static func thisBootsLiveWord(_ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8]) -> UInt64? {
        for half in 0..<2 {
            let word = view.atomicLoad(UInt64.self, at: TableFormat.liveOffset + half * 8)
            let matches = unsafe withUnsafeBytes(of: word) {
                unsafe $0.elementsEqual(bootIdentifier[half * 8..<half * 8 + 8])
            }
            guard matches else { return nil }
        }
        return view.atomicLoad(UInt64.self, at: TableFormat.liveCountOffset)
    }

    /// What the count rule (``TableFormat/chooseCount(liveWord:commitPoint:capacity:)``) reads
    /// from a mapping of the table's first page or more: this boot's live word (nil if the live
    /// area carries another boot's identifier) and the latest valid commit slot. The caller
    /// reads the file's size after these, as docs/FORMAT.md asks.
    static func countInputs(
        _ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8]
    ) -> (liveWord: UInt64?, commitPoint: CommitSlot?) {
        let liveWord = thisBootsLiveWord(view, bootIdentifier: bootIdentifier)
        let slot = unsafe view.withUnsafeMutableBytes { unsafe CommitSlot.latest(UnsafeRawBufferPointer($0)) }
        return (liveWord, slot)
    }

    /// The live word and the live area's doorbell word, if this boot's writer wrote them.
    static func liveWords(
        _ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8]
    ) -> (live: UInt64, doorbell: UInt64)? {
        guard let live = thisBootsLiveWord(view, bootIdentifier: bootIdentifier) else { return nil }
        return (live, view.atomicLoad(UInt64.self, at: DoorbellFormat.liveAreaOffset))
    }

    /// Spins until the live word differs from `seen` or `until` (monotonic ns) passes.
    static func spin(_ view: borrowing MappedViewAccessor, seen: UInt64, until: UInt64) {
        var round = 0
        while view.atomicLoad(UInt64.self, at: TableFormat.liveCountOffset) == seen {
            round &+= 1
            if round & 1023 == 0 && monotonicNanoseconds() >= until { return }
        }
    }

    /// Prepares a sleep on the live word: registers with the doorbell if there is one. Returns
    /// the word to sleep on (its low half) and how long to sleep at most.
    /// `seen` is the live word read *before* the caller last read the count; `target` the count
    /// it waits for.
    static func prepareSleep(
        _ view: borrowing MappedViewAccessor, seen: UInt64, target: Int, listener: DoorbellListener,
        bootIdentifier: [UInt8],
        remaining: UInt64, backoff: inout Duration
    ) -> (expected: UInt32, limit: Duration) {
        let remainingDuration = Duration.nanoseconds(Int64(clamping: remaining))
        let expected = UInt32(truncatingIfNeeded: seen)
        if let words = liveWords(view, bootIdentifier: bootIdentifier),
            listener.register(target: target, liveAreaWord: words.doorbell)
        {
            return (expected, min(longestSleep, remainingDuration))
        }
        backoff = min(backoff * 2, longestSleepWithoutDoorbell)
        return (expected, min(backoff, remainingDuration))
    }
}

extension UInt64 {
    /// `self + other`, or `.max` where that overflows.
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

extension Int {
    /// `self + 1`, or `.max` for `.max`: the count a waiter for "more than `self`" waits for.
    var saturatingSuccessor: Int { self == .max ? .max : self + 1 }
}

extension Duration {
    /// The duration in nanoseconds: 0 if negative, `UInt64.max` if it does not fit.
    var saturatingNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole.saturatingAdd(UInt64(max(0, attoseconds / 1_000_000_000)))
    }
}
