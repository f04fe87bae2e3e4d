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
