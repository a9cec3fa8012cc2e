#!/usr/bin/env python3
"""Training-reader benchmark (issue 10).

usage: bench_reader.py DATASET [N]

  1. items/s and frames/s of N samples read through flmstream.Dataset in shuffled epoch order
     (random access) vs the same reader going through the samples in index order (sequential
     shard bytes), one process; then the shuffled read split over 2 worker processes;
  2. peak memory (RSS) of a process holding a Dataset over a 1M-sample index (rows made with SQL
     from DATASET's first samples), epoch built.
Run with FLMSTREAM_LIB pointing at build/libflmstream.so (bench/run.sh does).
"""
import multiprocessing as mp
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import flmstream  # noqa: E402


def read(args):
    path, shuffle, rank, world, n = args
    ds = flmstream.Dataset(path, seed=1, shuffle=shuffle, rank=rank, world=world)
    t0, frames = time.perf_counter(), 0
    for k in range(min(n, len(ds))):
        frames += ds[k]["n_frames"]
    return time.perf_counter() - t0, min(n, len(ds)), frames


def drop_caches():
    os.system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null")


def main():
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    for label, shuffle in (("sequential (index order)", False), ("random (shuffled epoch)", True)):
        drop_caches()
        dt, k, fr = read((path, shuffle, 0, 1, n))
        print(f"{label:28s} 1 process : {k / dt:8.1f} samples/s {fr / dt / 1e3:9.1f} k frames/s")
        if shuffle:
            rnd = k / dt
        else:
            seq = k / dt
    print(f"random / sequential: {rnd / seq:.2f}")
    drop_caches()
    with mp.get_context("spawn").Pool(2) as pool:
        res = pool.map(read, [(path, True, r, 2, n) for r in range(2)])
    dt = max(r[0] for r in res)  # both workers read n samples each, concurrently
    k, fr = sum(r[1] for r in res), sum(r[2] for r in res)
    print(f"{'random (shuffled epoch)':28s} 2 workers : {k / dt:8.1f} samples/s {fr / dt / 1e3:9.1f} k frames/s "
          f"({k / dt / rnd:.2f}x one process)")

    # memory with a 1M-sample index
    tmp = tempfile.mkdtemp()
    try:
        idx = os.path.join(tmp, "index.sqlite")
        src = path if path.endswith(".sqlite") else os.path.join(path, "index.sqlite")
        shutil.copy(src, idx)
        db = sqlite3.connect(idx)
        base = os.path.dirname(os.path.abspath(src))
        db.execute("UPDATE shards SET path = ? || '/' || path", (base,))
        have = db.execute("SELECT count(*) FROM samples").fetchone()[0]
        db.execute(
            "INSERT INTO samples (sample_key, shard_id, record, n_frames, style, stage, language,"
            " corpus, speakers, duration_s, checksum, metadata) "
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
            "SELECT 'copy/' || i, 1, 1000000 + i, 100, 'tts', 'pt', 'en', 'corpus-' || (i % 7),"
            " 'spk', 8.0, '0', '{}' FROM c", (1_000_000 - have,))
        db.commit()
        db.close()
        code = ("import resource, sys; sys.path.insert(0, %r); import flmstream;"
                "d = flmstream.Dataset(%r, seed=1, weights={'corpus-1': 5.0});"
                "print(len(d), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
                % (os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"), idx))
        base_code = "import resource, numpy, cffi; print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        out = os.popen(f"{sys.executable} -c \"{code}\"").read().split()
        base_rss = int(os.popen(f"{sys.executable} -c \"{base_code}\"").read().split()[1])
        print(f"1M-sample index: epoch of {out[0]} samples, peak RSS {int(out[1]) / 1024:.0f} MB "
              f"(Python + numpy + cffi alone: {base_rss / 1024:.0f} MB)")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
