// LMDB's C API (Debian's liblmdb-dev). Only the MappedRegistry module uses it;
// no LMDB type appears in its public API.
#include <lmdb.h>
