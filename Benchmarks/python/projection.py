"""Column projection over HTTP: per-column ranges against one whole range (docs/PYTHON.md, "Dask").
usage: projection.py [DIR]"""
import os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python")); sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "tests"))
import numpy as np, fsspec, mappedrecords
from servers import RangeServer
root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TMPDIR", "/tmp"), "mappedrecords-projection"); os.makedirs(root, exist_ok=True)
p = os.path.join(root, "wide.mrec")
if os.path.exists(p): os.unlink(p)
WIDE = np.dtype([("id", "<i8"), ("payload", "V1016")])  # 1 KiB records, 8-byte column wanted
n = 10_000
with mappedrecords.create(p, WIDE, durability="none", capacity=n) as w:
    r = np.zeros(n, WIDE); r["id"] = np.arange(n); w.append(r)
server = RangeServer(root)
url = f"{server.url}/wide.mrec"
fs = fsspec.filesystem("http")
t = mappedrecords.open(p); off = t.header.data_offset; t.close()
def whole():
    data = fs.cat_file(url, start=off, end=off + n * WIDE.itemsize)
    return np.frombuffer(data, dtype=WIDE)["id"]
def per_column(k):
    starts = [off + i * WIDE.itemsize for i in range(k)]
    ends = [s + 8 for s in starts]
    return fs.cat_ranges([url] * k, starts, ends)
for label, f in (("whole range, 10,000 records of 1 KiB (9.8 MiB), one request", whole),
                 ("per-column ranges, 1,000 records (8 bytes each), 1,000 requests", lambda: per_column(1000))):
    best = 1e9
    for _ in range(3):
        s = time.perf_counter(); f(); best = min(best, time.perf_counter() - s)
    print(f"{label}: {best*1e3:.0f} ms")
server.close(); os.unlink(p); os.rmdir(root)
