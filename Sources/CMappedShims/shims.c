#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include "CMappedShims.h"

int cmapped_memfd_create(const char *name, unsigned int flags) {
    return memfd_create(name, flags);
}

const unsigned int cmapped_MFD_CLOEXEC = MFD_CLOEXEC;

const int cmapped_F_OFD_GETLK = F_OFD_GETLK;
const int cmapped_F_OFD_SETLK = F_OFD_SETLK;

const int cmapped_O_TMPFILE = O_TMPFILE;
const int cmapped_AT_EMPTY_PATH = AT_EMPTY_PATH;

#include <sys/vfs.h>
long cmapped_filesystem_type(int descriptor) {
    struct statfs status;
    return fstatfs(descriptor, &status) == 0 ? (long)status.f_type : -1;
}

int cmapped_start_writeback(int descriptor, long long offset, long long length) {
    return sync_file_range(descriptor, offset, length, SYNC_FILE_RANGE_WRITE);
}

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cmapped_futex_wait(const uint32_t *address, uint32_t expected, long long timeout_nanoseconds) {
    struct timespec timeout = { timeout_nanoseconds / 1000000000, timeout_nanoseconds % 1000000000 };
    return (int)syscall(SYS_futex, address, FUTEX_WAIT, expected, timeout_nanoseconds < 0 ? NULL : &timeout, NULL, 0);
}

int cmapped_futex_wake(const uint32_t *address, int count) {
    return (int)syscall(SYS_futex, address, FUTEX_WAKE, count, NULL, NULL, 0);
}

int cmapped_membarrier_register(void) {
    return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
}

int cmapped_membarrier_global(void) {
    return (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}
