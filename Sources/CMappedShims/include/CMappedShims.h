// Declarations that Glibc's Swift overlay does not expose (they need _GNU_SOURCE).
#ifndef C_MAPPED_SHIMS_H
#define C_MAPPED_SHIMS_H

#include <stddef.h>

/// memfd_create(2): an anonymous, unlinked tmpfs file.
int cmapped_memfd_create(const char *name, unsigned int flags);

/// The MFD_CLOEXEC flag of memfd_create(2).
extern const unsigned int cmapped_MFD_CLOEXEC;

/// fcntl(2) commands for open-file-description locks, which the kernel releases
/// when the last descriptor of the open file description closes (or its process dies).
extern const int cmapped_F_OFD_GETLK;
extern const int cmapped_F_OFD_SETLK;

#endif
