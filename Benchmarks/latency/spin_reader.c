// The C busy-spin baseline of `make latency`: maps a table read-only, spins on its live word
// (docs/FORMAT.md), and prints append → visible for each new record, in nanoseconds.
// usage: spin-reader PATH COUNT
#include <fcntl.h>
#include "MappedTableLayout.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: spin-reader PATH COUNT\n"); return 2; }
    long target = atol(argv[2]);
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror("open"); return 3; }
    const uint8_t *file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (file == MAP_FAILED) { perror("mmap"); return 3; }
    uint64_t data_offset = *(const uint64_t *)(file + MREC_DATA_OFFSET_OFFSET);
    uint32_t stride = *(const uint32_t *)(file + MREC_STRIDE_OFFSET);
    const uint64_t *live = (const uint64_t *)(file + MREC_LIVE_WORD_OFFSET);
    uint64_t *latencies = malloc(sizeof(uint64_t) * (size_t)target);
    long seen = (long)(__atomic_load_n(live, __ATOMIC_ACQUIRE) & MREC_LIVE_COUNT_MASK);
    long base = seen;
    printf("ready\n");
    fflush(stdout);
    while (seen - base < target) {
        uint64_t word;
        while (((word = __atomic_load_n(live, __ATOMIC_ACQUIRE)) & MREC_LIVE_COUNT_MASK) == (uint64_t)seen) {}
        uint64_t now = now_ns();
        long count = (long)(word & MREC_LIVE_COUNT_MASK);
        for (long i = seen; i < count && i - base < target; i++)
            latencies[i - base] = now - *(const uint64_t *)(file + data_offset + (uint64_t)i * stride);
        seen = count;
    }
    for (long i = 0; i < target; i++) printf("%llu\n", (unsigned long long)latencies[i]);
    return 0;
}
