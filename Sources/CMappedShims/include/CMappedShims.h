// Declarations that Glibc's Swift overlay does not expose (they need _GNU_SOURCE).
#ifndef C_MAPPED_SHIMS_H
#define C_MAPPED_SHIMS_H

#include <stddef.h>
#include <stdint.h>

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

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: start writing back a range, without waiting.
int cmapped_start_writeback(int descriptor, long long offset, long long length);

/// An 8-byte load with acquire ordering; `address` must be 8-byte aligned.
static inline uint64_t cmapped_load_acquire_u64(const void *address) {
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_ACQUIRE);
}

/// An 8-byte store with release ordering; `address` must be 8-byte aligned.
static inline void cmapped_store_release_u64(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELEASE);
}

#endif
