#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
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

int cmapped_pipe_cloexec(int ends[2]) {
    return pipe2(ends, O_CLOEXEC);
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

// ---- CRC-32C (Castagnoli) -------------------------------------------------------------------
// The CPU's own instruction where it has one (SSE 4.2 on x86-64, the CRC extension on ARMv8),
// chosen once at run time; otherwise a byte-at-a-time table. All three give the same result.

static uint32_t crc32c_table[256];

static void crc32c_make_table(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t value = index;
        for (int bit = 0; bit < 8; bit++) value = (value & 1) ? (value >> 1) ^ 0x82F63B78u : value >> 1;
        crc32c_table[index] = value;
    }
}

static uint32_t crc32c_portable(uint32_t crc, const unsigned char *bytes, size_t length) {
    for (size_t index = 0; index < length; index++) crc = crc32c_table[(crc ^ bytes[index]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#include <string.h>
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    uint64_t wide = crc;
    for (; length >= 8; bytes += 8, length -= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = __builtin_ia32_crc32di(wide, word);
    }
    crc = (uint32_t)wide;
    for (; length > 0; bytes++, length--) crc = __builtin_ia32_crc32qi(crc, *bytes);
    return crc;
}
static int crc32c_hardware_available(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
__attribute__((target("crc"))) static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    for (; length >= 8; bytes += 8, length -= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        crc = __builtin_arm_crc32cd(crc, word);
    }
    for (; length > 0; bytes++, length--) crc = __builtin_arm_crc32cb(crc, *bytes);
    return crc;
}
static int crc32c_hardware_available(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    return crc32c_portable(crc, bytes, length);
}
static int crc32c_hardware_available(void) { return 0; }
#endif

static int crc32c_uses_hardware = -1;

__attribute__((constructor)) static void crc32c_choose(void) {
    crc32c_make_table();
    crc32c_uses_hardware = crc32c_hardware_available();
}

uint32_t cmapped_crc32c(uint32_t previous, const void *bytes, size_t length, int portable) {
    uint32_t crc = ~previous;
    crc = (crc32c_uses_hardware > 0 && !portable) ? crc32c_hardware(crc, bytes, length)
                                                   : crc32c_portable(crc, bytes, length);
    return ~crc;
}

#include <sys/xattr.h>

long cmapped_flistxattr(int descriptor, char *names, size_t size) { return flistxattr(descriptor, names, size); }

long cmapped_fgetxattr(int descriptor, const char *name, void *value, size_t size) {
    return fgetxattr(descriptor, name, value, size);
}

int cmapped_fsetxattr(int descriptor, const char *name, const void *value, size_t size) {
    return fsetxattr(descriptor, name, value, size, 0);
}
