// Declarations that Glibc's Swift overlay does not expose (they need _GNU_SOURCE).
#ifndef C_MAPPED_SHIMS_H
#define C_MAPPED_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include "MappedTableLayout.h"

/// memfd_create(2): an anonymous, unlinked tmpfs file.
int cmapped_memfd_create(const char *name, unsigned int flags);

/// The MFD_CLOEXEC flag of memfd_create(2).
extern const unsigned int cmapped_MFD_CLOEXEC;

/// fcntl(2) commands for open-file-description locks, which the kernel releases
/// when the last descriptor of the open file description closes (or its process dies).
extern const int cmapped_F_OFD_GETLK;
extern const int cmapped_F_OFD_SETLK;

/// open(2)'s O_TMPFILE: a file with no name yet, in a directory, that linkat(2) can name later.
extern const int cmapped_O_TMPFILE;
/// linkat(2)'s AT_EMPTY_PATH: link the file the descriptor refers to.
extern const int cmapped_AT_EMPTY_PATH;

/// fstatfs(2)'s f_type (TMPFS_MAGIC and so on) for a descriptor, or -1 with errno set.
long cmapped_filesystem_type(int descriptor);

/// flistxattr(2), fgetxattr(2) and fsetxattr(2) (flags 0): a file's extended attributes,
/// which a migration copies to the table that replaces the old one.
long cmapped_flistxattr(int descriptor, char *names, size_t size);
long cmapped_fgetxattr(int descriptor, const char *name, void *value, size_t size);
int cmapped_fsetxattr(int descriptor, const char *name, const void *value, size_t size);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: start writing back a range, without waiting.
int cmapped_start_writeback(int descriptor, long long offset, long long length);

/// pipe2(2) with O_CLOEXEC: a pipe whose ends no child spawned meanwhile inherits (the tests'
/// child processes talk through such pipes).
int cmapped_pipe_cloexec(int ends[2]);

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `previous` (0 to start): with the
/// CPU's CRC instruction when it has one, unless `portable` is nonzero (tests compare both).
uint32_t cmapped_crc32c(uint32_t previous, const void *bytes, size_t length, int portable);

/// Tells the CPU that this thread is spinning (x86 `pause`): a spinner then takes less of a
/// sibling hyperthread's time, and leaves its loop sooner when the word changes.
static inline void cmapped_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// An 8-byte load with acquire ordering; `address` must be 8-byte aligned.
static inline uint64_t cmapped_load_acquire_u64(const void *address) {
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_ACQUIRE);
}

/// An 8-byte store with release ordering; `address` must be 8-byte aligned.
static inline void cmapped_store_release_u64(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELEASE);
}

/// A 4-byte load with acquire ordering; `address` must be 4-byte aligned.
static inline uint32_t cmapped_load_acquire_u32(const void *address) {
    return __atomic_load_n((const uint32_t *)address, __ATOMIC_ACQUIRE);
}

/// A 4-byte store with release ordering; `address` must be 4-byte aligned.
static inline void cmapped_store_release_u32(void *address, uint32_t value) {
    __atomic_store_n((uint32_t *)address, value, __ATOMIC_RELEASE);
}

/// A sequentially consistent 4-byte compare-and-exchange; returns the value found.
static inline uint32_t cmapped_compare_exchange_u32(void *address, uint32_t expected, uint32_t desired) {
    __atomic_compare_exchange_n((uint32_t *)address, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}

/// A sequentially consistent 8-byte compare-and-exchange; returns the value found.
static inline uint64_t cmapped_compare_exchange_u64(void *address, uint64_t expected, uint64_t desired) {
    __atomic_compare_exchange_n((uint64_t *)address, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}

/// An 8-byte relaxed store; `address` must be 8-byte aligned.
static inline void cmapped_store_relaxed_u64(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELAXED);
}

/// An 8-byte relaxed load that the compiler keeps after every store before it (a signal
/// fence, no instruction). The other half of an asymmetric fence: a process that calls
/// `cmapped_membarrier_global()` makes the processor order it too (docs/FORMAT.md, "Doorbell").
static inline uint64_t cmapped_load_after_stores_u64(const void *address) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_RELAXED);
}

/// futex(2) FUTEX_WAIT on a shared (not process-private) word: sleeps while `*address == expected`,
/// at most `timeout_nanoseconds` (negative: no limit). Returns 0 when woken, or -1 with errno
/// (EAGAIN: the word differed; ETIMEDOUT; EINTR).
int cmapped_futex_wait(const uint32_t *address, uint32_t expected, long long timeout_nanoseconds);

/// futex(2) FUTEX_WAKE on a shared word: wakes up to `count` waiters; returns how many, or -1.
int cmapped_futex_wake(const uint32_t *address, int count);

/// membarrier(2) MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: lets other processes' global
/// expedited barriers reach this one. Returns 0 or -1 with errno.
int cmapped_membarrier_register(void);

/// membarrier(2) MEMBARRIER_CMD_GLOBAL_EXPEDITED: a full memory barrier on every running thread
/// of every registered process. Returns 0 or -1 with errno.
int cmapped_membarrier_global(void);

#endif
