// The C blocking baseline of `make latency`: two processes and one shared word. The child
// sleeps with FUTEX_WAIT on the word; the parent, at a fixed cadence, stamps the time, bumps the
// word and calls FUTEX_WAKE. The child prints wake → now for each sample, in nanoseconds: the
// floor for any reader that sleeps in the kernel until a writer wakes it (docs/PERFORMANCE.md).
// usage: futex-pair INTERVAL_US SAMPLES
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    uint32_t word;       // the futex: the sample number
    uint32_t ready;      // the child is about to wait for the first sample
    uint64_t stamp;      // when the parent published the sample
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t deadline) {
    struct timespec t = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0) {}
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: futex-pair INTERVAL_US SAMPLES\n"); return 2; }
    uint64_t interval = (uint64_t)atol(argv[1]) * 1000u;
    long samples = atol(argv[2]);
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) { perror("mmap"); return 3; }
    pid_t child = fork();
    if (child == 0) {
        uint64_t *latencies = malloc(sizeof(uint64_t) * (size_t)samples);
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
        for (long i = 0; i < samples; i++) {
            uint32_t expected = (uint32_t)i;
            while (__atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == expected)
                syscall(SYS_futex, &s->word, FUTEX_WAIT, expected, NULL, NULL, 0);
            latencies[i] = now_ns() - __atomic_load_n(&s->stamp, __ATOMIC_ACQUIRE);
        }
        for (long i = 0; i < samples; i++) printf("%llu\n", (unsigned long long)latencies[i]);
        fflush(stdout);
        _exit(0);
    }
    while (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) usleep(1000);
    usleep(200000);  // the child is asleep now
    uint64_t next = now_ns() + interval;
    for (long i = 0; i < samples; i++) {
        sleep_until(next);
        __atomic_store_n(&s->stamp, now_ns(), __ATOMIC_RELEASE);
        __atomic_store_n(&s->word, (uint32_t)(i + 1), __ATOMIC_RELEASE);
        syscall(SYS_futex, &s->word, FUTEX_WAKE, 1, NULL, NULL, 0);
        next += interval;
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
