// The C side of `make compare`: the limit (a raw mmap pointer and memcpy), pread/pwrite per
// record, LMDB and SQLite, on the workload of Benchmarks/compare/README.md.
//
//   peers generate DIR N          writes DIR/records-N.raw and (once) DIR/indices.bin
//   peers run SYSTEM DIR N RUNS   prints one JSON line per measurement and run
//
// SYSTEM is raw, pread, lmdb or sqlite. Every timed loop folds what it reads into a checksum
// that is printed, so the compiler cannot drop the work.
#define _GNU_SOURCE
#include <fcntl.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct { int64_t id; double x; double y; int32_t flags; int32_t pad; } Record;
_Static_assert(sizeof(Record) == 32, "the workload's record is 32 bytes");

enum { INDEX_COUNT = 10000000, OPEN_REPEATS = 200 };

static void die(const char *what) { perror(what); exit(1); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void result(const char *system, const char *op, long n, int run, double seconds, long ops, double check) {
    printf("{\"system\":\"%s\",\"op\":\"%s\",\"records\":%ld,\"run\":%d,\"seconds\":%.9f,\"ops\":%ld,\"check\":%.17g}\n",
           system, op, n, run, seconds, ops, check);
    fflush(stdout);
}

// Scans of small tables repeat until they cover 16 M records, so that each run is long enough to time.
static long scan_repeats(long n) { return n >= 16777216 ? 1 : 16777216 / n; }

static char *path(const char *dir, const char *name, long n) {
    char *p; if (asprintf(&p, "%s/%s-%ld", dir, name, n) < 0) die("asprintf"); return p;
}

static void *read_whole(const char *file, size_t *size) {
    int fd = open(file, O_RDONLY); if (fd < 0) die(file);
    struct stat st; fstat(fd, &st); *size = st.st_size;
    char *buffer = malloc(*size); size_t done = 0;
    while (done < *size) { ssize_t got = read(fd, buffer + done, *size - done); if (got <= 0) die("read"); done += got; }
    close(fd); return buffer;
}

static void generate(const char *dir, long n) {
    char *file = path(dir, "records", n); Record *records = malloc(n * sizeof(Record));
    for (long i = 0; i < n; i++) records[i] = (Record){ i, i * 0.5, (double)(i % 1000), (int32_t)(i % 7), 0 };
    FILE *out = fopen(file, "wb"); if (!out || fwrite(records, sizeof(Record), n, out) != (size_t)n) die(file); fclose(out);
    // 10 M indices below N from xorshift64 with a fixed seed: the same sequence for every system.
    char *indices = path(dir, "indices", n);
    uint32_t *index = malloc(INDEX_COUNT * 4); uint64_t s = 0x9E3779B97F4A7C15ull;
    for (long k = 0; k < INDEX_COUNT; k++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; index[k] = (uint32_t)(s % 16777216 % n); }
    out = fopen(indices, "wb"); if (!out || fwrite(index, 4, INDEX_COUNT, out) != INDEX_COUNT) die(indices); fclose(out);
}

// ---- raw mmap: the limit ------------------------------------------------------------------

static void run_raw(const char *dir, long n, int runs, const Record *source, const uint32_t *index) {
    char *file = path(dir, "raw", n);
    for (int run = 0; run <= runs; run++) {  // run 0 warms up and is not reported
        double t = now();
        int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644); if (fd < 0) die(file);
        if (posix_fallocate(fd, 0, n * sizeof(Record))) die("fallocate");
        Record *map = mmap(NULL, n * sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); if (map == MAP_FAILED) die("mmap");
        memcpy(map, source, n * sizeof(Record));
        munmap(map, n * sizeof(Record)); close(fd);
        if (run) result("C raw mmap", "bulk load", n, run, now() - t, n, 0);
    }
    int fd = open(file, O_RDWR); if (fd < 0) die(file);
    // The same page-cache state as every other side: written back, dropped, faulted in by the mapping.
    if (fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) die("fsync/fadvise");
    Record *map = mmap(NULL, n * sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); if (map == MAP_FAILED) die("mmap");
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (long rep = 0; rep < scan_repeats(n); rep++) {
            double a = 0, b = 0, c = 0, d = 0; long i = 0;  /* four sums, as numpy and the Swift side do */
            for (; i + 4 <= n; i += 4) { a += map[i].x; b += map[i + 1].x; c += map[i + 2].x; d += map[i + 3].x; }
            for (; i < n; i++) a += map[i].x;
            sum += (a + b) + (c + d);
        }
        if (run) result("C raw mmap", "scan", n, run, now() - t, n * scan_repeats(n), sum);
    }
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (long k = 0; k < INDEX_COUNT; k++) sum += map[index[k]].x;
        if (run) result("C raw mmap", "random read", n, run, now() - t, INDEX_COUNT, sum);
    }
    for (int run = 0; run <= runs; run++) {
        double t = now();
        for (long k = 0; k < INDEX_COUNT; k++) map[index[k]].x += 1;
        if (run) result("C raw mmap", "random update", n, run, now() - t, INDEX_COUNT, map[0].x);
    }
    munmap(map, n * sizeof(Record)); close(fd);
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (int r = 0; r < OPEN_REPEATS; r++) {
            int d = open(file, O_RDONLY); struct stat st; fstat(d, &st);
            Record *m = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, d, 0); if (m == MAP_FAILED) die("mmap");
            sum += m[0].x; munmap(m, st.st_size); close(d);
        }
        if (run) result("C raw mmap", "open to first read", n, run, now() - t, OPEN_REPEATS, sum);
    }
}

// ---- pread/pwrite per record --------------------------------------------------------------

static void run_pread(const char *dir, long n, int runs, const Record *source, const uint32_t *index) {
    char *file = path(dir, "pread", n);
    long ops = INDEX_COUNT / 5;  // 2 M: a syscall each
    for (int run = 0; run <= runs; run++) {
        double t = now();
        int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644); if (fd < 0) die(file);
        for (long i = 0; i < n; i++) if (pwrite(fd, &source[i], sizeof(Record), i * sizeof(Record)) != sizeof(Record)) die("pwrite");
        close(fd);
        if (run) result("C pread/pwrite", "bulk load", n, run, now() - t, n, 0);
    }
    int fd = open(file, O_RDWR); if (fd < 0) die(file);
    Record r;
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (long i = 0; i < n; i++) {
            if (pread(fd, &r, sizeof r, i * sizeof r) != sizeof r) die("pread");
            sum += r.x;
        }
        if (run) result("C pread/pwrite", "scan", n, run, now() - t, n, sum);
    }
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (long k = 0; k < ops; k++) {
            if (pread(fd, &r, sizeof r, (index[k]) * sizeof r) != sizeof r) die("pread");
            sum += r.x;
        }
        if (run) result("C pread/pwrite", "random read", n, run, now() - t, ops, sum);
    }
    for (int run = 0; run <= runs; run++) {
        double t = now();
        for (long k = 0; k < ops; k++) {
            off_t at = (index[k]) * sizeof r;
            if (pread(fd, &r, sizeof r, at) != sizeof r) die("pread");
            r.x += 1;
            if (pwrite(fd, &r, sizeof r, at) != sizeof r) die("pwrite");
        }
        if (run) result("C pread/pwrite", "random update", n, run, now() - t, ops, r.x);
    }
    close(fd);
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (int k = 0; k < OPEN_REPEATS; k++) {
            int d = open(file, O_RDONLY);
            if (pread(d, &r, sizeof r, 0) != sizeof r) die("pread");
            sum += r.x;
            close(d);
        }
        if (run) result("C pread/pwrite", "open to first read", n, run, now() - t, OPEN_REPEATS, sum);
    }
}

// ---- LMDB, keyed by big-endian id ---------------------------------------------------------

#define CHECK(call) do { int rc_ = (call); if (rc_) { fprintf(stderr, "%s: %s\n", #call, mdb_strerror(rc_)); exit(1); } } while (0)

static MDB_env *lmdb_open(const char *dir, unsigned flags) {
    MDB_env *env; CHECK(mdb_env_create(&env));
    CHECK(mdb_env_set_mapsize(env, (size_t)4 << 30));
    CHECK(mdb_env_open(env, dir, flags | MDB_NOSYNC, 0644));
    return env;
}

static void run_lmdb(const char *dir, long n, int runs, const Record *source, const uint32_t *index) {
    char *home = path(dir, "lmdb", n);
    long ops = INDEX_COUNT / 5;
    for (int run = 0; run <= runs; run++) {
        char *command; if (asprintf(&command, "rm -rf '%s' && mkdir -p '%s'", home, home) < 0) die("asprintf");
        if (system(command)) die("rm");
        free(command);
        double t = now();
        MDB_env *env = lmdb_open(home, 0); MDB_txn *txn; MDB_dbi dbi;
        CHECK(mdb_txn_begin(env, NULL, 0, &txn)); CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
        for (long i = 0; i < n; i++) {
            uint64_t key = __builtin_bswap64((uint64_t)i);
            MDB_val k = { 8, &key }, v = { sizeof(Record), (void *)&source[i] };
            CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND));
        }
        CHECK(mdb_txn_commit(txn)); mdb_env_close(env);
        if (run) result("LMDB", "bulk load", n, run, now() - t, n, 0);
    }
    MDB_env *env = lmdb_open(home, 0); MDB_txn *txn; MDB_dbi dbi; MDB_val k, v; Record r;
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)); CHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now(); MDB_cursor *cursor; CHECK(mdb_cursor_open(txn, dbi, &cursor));
        while (mdb_cursor_get(cursor, &k, &v, MDB_NEXT) == 0) { memcpy(&r, v.mv_data, sizeof r); sum += r.x; }
        mdb_cursor_close(cursor);
        if (run) result("LMDB", "scan", n, run, now() - t, n, sum);
    }
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (long j = 0; j < ops; j++) {
            uint64_t key = __builtin_bswap64((uint64_t)index[j]); k = (MDB_val){ 8, &key };
            CHECK(mdb_get(txn, dbi, &k, &v)); memcpy(&r, v.mv_data, sizeof r); sum += r.x;
        }
        if (run) result("LMDB", "random read", n, run, now() - t, ops, sum);
    }
    mdb_txn_abort(txn);
    for (int run = 0; run <= runs; run++) {
        double t = now(); CHECK(mdb_txn_begin(env, NULL, 0, &txn));
        for (long j = 0; j < ops; j++) {
            uint64_t key = __builtin_bswap64((uint64_t)index[j]); k = (MDB_val){ 8, &key };
            CHECK(mdb_get(txn, dbi, &k, &v)); memcpy(&r, v.mv_data, sizeof r); r.x += 1;
            v = (MDB_val){ sizeof r, &r }; CHECK(mdb_put(txn, dbi, &k, &v, 0));
        }
        CHECK(mdb_txn_commit(txn));
        if (run) result("LMDB", "random update", n, run, now() - t, ops, r.x);
    }
    mdb_env_close(env);
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (int j = 0; j < OPEN_REPEATS; j++) {
            MDB_env *e = lmdb_open(home, MDB_RDONLY); MDB_txn *x; MDB_dbi d; uint64_t key = 0;
            CHECK(mdb_txn_begin(e, NULL, MDB_RDONLY, &x)); CHECK(mdb_dbi_open(x, NULL, 0, &d));
            k = (MDB_val){ 8, &key }; CHECK(mdb_get(x, d, &k, &v)); memcpy(&r, v.mv_data, sizeof r); sum += r.x;
            mdb_txn_abort(x); mdb_env_close(e);
        }
        if (run) result("LMDB", "open to first read", n, run, now() - t, OPEN_REPEATS, sum);
    }
}

// ---- SQLite, INTEGER PRIMARY KEY ----------------------------------------------------------

static void sql(sqlite3 *db, const char *text) {
    char *error = NULL; if (sqlite3_exec(db, text, NULL, NULL, &error)) { fprintf(stderr, "%s: %s\n", text, error); exit(1); }
}
static sqlite3_stmt *prepare(sqlite3 *db, const char *text) {
    sqlite3_stmt *s; if (sqlite3_prepare_v2(db, text, -1, &s, NULL)) { fprintf(stderr, "%s: %s\n", text, sqlite3_errmsg(db)); exit(1); } return s;
}

static void run_sqlite(const char *dir, long n, int runs, const Record *source, const uint32_t *index) {
    char *file = path(dir, "sqlite", n);
    long ops = INDEX_COUNT / 5;
    sqlite3 *db; sqlite3_stmt *s;
    for (int run = 0; run <= runs; run++) {
        unlink(file);
        double t = now();
        if (sqlite3_open(file, &db)) die("sqlite3_open");
        sql(db, "PRAGMA synchronous=OFF; CREATE TABLE t(id INTEGER PRIMARY KEY, x REAL, y REAL, flags INTEGER, pad INTEGER); BEGIN");
        s = prepare(db, "INSERT INTO t VALUES (?,?,?,?,?)");
        for (long i = 0; i < n; i++) {
            sqlite3_bind_int64(s, 1, source[i].id); sqlite3_bind_double(s, 2, source[i].x); sqlite3_bind_double(s, 3, source[i].y);
            sqlite3_bind_int(s, 4, source[i].flags); sqlite3_bind_int(s, 5, source[i].pad);
            if (sqlite3_step(s) != SQLITE_DONE) die("insert");
            sqlite3_reset(s);
        }
        sqlite3_finalize(s); sql(db, "COMMIT"); sqlite3_close(db);
        if (run) result("SQLite", "bulk load", n, run, now() - t, n, 0);
    }
    if (sqlite3_open(file, &db)) die("sqlite3_open");
    sql(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-1048576; PRAGMA mmap_size=4294967296");
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now(); s = prepare(db, "SELECT x FROM t");
        while (sqlite3_step(s) == SQLITE_ROW) sum += sqlite3_column_double(s, 0);
        sqlite3_finalize(s);
        if (run) result("SQLite", "scan", n, run, now() - t, n, sum);
    }
    s = prepare(db, "SELECT x FROM t WHERE id=?");
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        sql(db, "BEGIN");  // one read transaction, as LMDB's reads have: no lock and header check per lookup
        for (long j = 0; j < ops; j++) {
            sqlite3_bind_int64(s, 1, index[j]);
            if (sqlite3_step(s) != SQLITE_ROW) die("select");
            sum += sqlite3_column_double(s, 0);
            sqlite3_reset(s);
        }
        sql(db, "COMMIT");
        if (run) result("SQLite", "random read", n, run, now() - t, ops, sum);
    }
    sqlite3_finalize(s);
    s = prepare(db, "UPDATE t SET x=x+1 WHERE id=?");
    for (int run = 0; run <= runs; run++) {
        double t = now(); sql(db, "BEGIN");
        for (long j = 0; j < ops; j++) {
            sqlite3_bind_int64(s, 1, index[j]);
            if (sqlite3_step(s) != SQLITE_DONE) die("update");
            sqlite3_reset(s);
        }
        sql(db, "COMMIT");
        if (run) result("SQLite", "random update", n, run, now() - t, ops, 0);
    }
    sqlite3_finalize(s); sqlite3_close(db);
    for (int run = 0; run <= runs; run++) {
        double sum = 0, t = now();
        for (int j = 0; j < OPEN_REPEATS; j++) {
            sqlite3 *d; if (sqlite3_open_v2(file, &d, SQLITE_OPEN_READONLY, NULL)) die("sqlite3_open");
            sqlite3_stmt *q = prepare(d, "SELECT x FROM t WHERE id=0");
            if (sqlite3_step(q) != SQLITE_ROW) die("select");
            sum += sqlite3_column_double(q, 0);
            sqlite3_finalize(q); sqlite3_close(d);
        }
        if (run) result("SQLite", "open to first read", n, run, now() - t, OPEN_REPEATS, sum);
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "generate")) { generate(argv[2], atol(argv[3])); return 0; }
    if (argc != 6 || strcmp(argv[1], "run")) { fprintf(stderr, "usage: peers generate DIR N | peers run raw|pread|lmdb|sqlite DIR N RUNS\n"); return 2; }
    const char *system = argv[2], *dir = argv[3]; long n = atol(argv[4]); int runs = atoi(argv[5]);
    size_t size; Record *source = read_whole(path(dir, "records", n), &size);
    if (size != n * sizeof(Record)) { fprintf(stderr, "records-%ld has %zu bytes\n", n, size); return 1; }
    uint32_t *index = read_whole(path(dir, "indices", n), &size);
    if (!strcmp(system, "raw")) run_raw(dir, n, runs, source, index);
    else if (!strcmp(system, "pread")) run_pread(dir, n, runs, source, index);
    else if (!strcmp(system, "lmdb")) run_lmdb(dir, n, runs, source, index);
    else if (!strcmp(system, "sqlite")) run_sqlite(dir, n, runs, source, index);
    else { fprintf(stderr, "unknown system %s\n", system); return 2; }
    return 0;
}
