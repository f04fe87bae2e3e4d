#define _GNU_SOURCE
#include <sys/mman.h>
#include "CMappedShims.h"

int cmapped_memfd_create(const char *name, unsigned int flags) {
    return memfd_create(name, flags);
}

const unsigned int cmapped_MFD_CLOEXEC = MFD_CLOEXEC;
