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
