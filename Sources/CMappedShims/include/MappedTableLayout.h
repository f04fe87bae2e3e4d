// The record-table layout for C readers (docs/FORMAT.md): the offsets a C program needs to find
// the records and the live count. Swift declares the same layout once in RecordTable's
// TableFormat, Python once in mappedrecords/_format.py; this is C's one declaration.
#ifndef MAPPED_TABLE_LAYOUT_H
#define MAPPED_TABLE_LAYOUT_H

#define MREC_STRIDE_OFFSET 24         // u32: bytes from one record to the next
#define MREC_DATA_OFFSET_OFFSET 32    // u64: where the records start
#define MREC_LIVE_AREA_OFFSET 1536    // 16 bytes of boot identifier, then the live word
#define MREC_LIVE_WORD_OFFSET 1552    // u64: bits 0-47 the live count, 48-63 its check
#define MREC_DOORBELL_WORD_OFFSET 1560 // u64: the writer's doorbell (docs/FORMAT.md, "Doorbell")
#define MREC_SEAL_WORD_OFFSET 1568   // u64: 0, or the next file of a series (minor 2, "Series")
#define MREC_APPENDER_LOCK_OFFSET 1576 // u64: the shared appenders' lock (minor 2, "Several appenders")
#define MREC_APPENDER_WAITERS_OFFSET 1584 // u64: appenders asleep on that lock
#define MREC_LIVE_COUNT_MASK 0xFFFFFFFFFFFFull

#endif
