import CMappedShims

/// Atomic loads and stores of 64-bit words at raw addresses in memory that other processes map
/// too: a `MappedViewAccessor`'s `withUnsafeMutableBytes`, a System V segment, a record table's
/// live word. Views offer the checked forms (`MappedViewAccessor.atomicLoad(_:at:)`); these take
/// an address the caller has checked: inside a mapping, and 8-byte aligned.
///
/// Every function reads or writes through a raw address, so each is `@unsafe`; each is
/// inlinable, since the table's append and read paths are built on them.
public enum SharedAtomics {
    /// Loads the word at `address` with acquire ordering.
    @unsafe @inlinable @inline(__always)
    public static func loadAcquire(_ address: UnsafeRawPointer) -> UInt64 {
        unsafe cmapped_load_acquire_u64(address)
    }

    /// Stores `value` at `address` with release ordering.
    @unsafe @inlinable @inline(__always)
    public static func storeRelease(_ address: UnsafeMutableRawPointer, _ value: UInt64) {
        unsafe cmapped_store_release_u64(address, value)
    }

    /// Replaces the word at `address` with `desired` if it equals `expected` (sequentially
    /// consistent); returns the value found, which equals `expected` on success.
    @unsafe @inlinable @inline(__always)
    public static func compareExchange(
        _ address: UnsafeMutableRawPointer, expected: UInt64, desired: UInt64
    ) -> UInt64 {
        unsafe cmapped_compare_exchange_u64(address, expected, desired)
    }

    /// Loads the word at `address` (relaxed) after every store before it, with a compiler
    /// barrier only and no instruction: a writer's half of an asymmetric fence whose other half
    /// is a reader's `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (docs/FORMAT.md, "Doorbell").
    @unsafe @inlinable @inline(__always)
    public static func loadAfterStores(_ address: UnsafeRawPointer) -> UInt64 {
        unsafe cmapped_load_after_stores_u64(address)
    }
}

extension SharedAtomics {
    /// One pause of a spin-wait loop (x86 `pause`, ARM `yield`): a spinner then slows its
    /// sibling hyperthread less. For loops that wait for another process's store.
    @inlinable @inline(__always)
    package static func spinPause() { cmapped_spin_pause() }
}

/// membarrier(2): a full memory barrier on every CPU that runs a process registered for it.
package enum ProcessBarrier {
    /// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`, once per process that wants other processes'
    /// barriers to reach it; 0 on success, -1 with errno.
    package static func registerForGlobal() -> Int32 { cmapped_membarrier_register() }

    /// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`; 0 on success, -1 with errno.
    package static func global() -> Int32 { cmapped_membarrier_global() }
}
