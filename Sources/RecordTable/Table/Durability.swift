// When a table's records reach the disk.

/// When a table makes its records durable (safe from power loss).
///
/// Whatever the mode, an appended record is safe from a *process* crash (kill -9) as soon as
/// `append` returns: it is in the kernel's page cache, and the live count that covers it is
/// published after it. The modes differ in what survives a power loss or a kernel crash.
public enum Durability: UInt32, Sendable, Hashable, CaseIterable {
    /// Never waits for the disk. `commit()` and `close()` write a commit point without syncing;
    /// after a power loss the table opens at some earlier commit point, or its header is
    /// damaged and `open` throws `corrupt`. Fastest.
    case none = 0
    /// `commit()` (and `close()`) syncs the new records, then writes and syncs a commit point.
    /// After a power loss the table has exactly the records of the last completed commit.
    case batch = 1
    /// Every append commits before it returns, as `batch` does. Slowest: two syncs per append.
    case everyAppend = 2
}
