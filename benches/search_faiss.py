#!/usr/bin/env python3
"""The faiss side of benches/search_compare.py: exact top-k inner-product search with
faiss.IndexFlatIP over the same raw f32 files that benches/search_topk.rs reads.

  ~/.cache/tessera/faiss-venv/bin/python benches/search_faiss.py --base FILE --queries FILE \\
      [--dim 256] [--k 10] [--cases 1,16,1000] [--reps 9] [--threads 2] [--json OUT]

The venv comes from scripts/setup-faiss.sh. Same protocol as the Rust bench: case c searches
with the first c query vectors, one warm-up search, then --reps timed ones (fewer for slow
cases, at least 2, about 10 s each); only index.search is timed (adding the vectors is not).
Writes JSON with every time and the ids and scores found.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np


def read_f32(path, dim):
    a = np.fromfile(path, dtype="<f4")
    if a.size % dim:
        sys.exit(f"search_faiss: {path}: {a.size} floats is not a whole number of {dim}-d vectors")
    return a.reshape(-1, dim)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=os.environ.get("TESSERA_SEARCH_BASE"))
    ap.add_argument("--queries", default=os.environ.get("TESSERA_SEARCH_QUERIES"))
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cases", default="1,16,1000")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json")
    a = ap.parse_args()
    if not a.base or not a.queries:
        sys.exit("search_faiss: need --base and --queries (or TESSERA_SEARCH_BASE/_QUERIES)")

    faiss.omp_set_num_threads(a.threads)
    t = time.perf_counter()
    base, queries = read_f32(a.base, a.dim), read_f32(a.queries, a.dim)
    index = faiss.IndexFlatIP(a.dim)
    index.add(base)
    del base  # the index holds its own copy
    print(f"search_faiss: {index.ntotal} × {a.dim} base, {len(queries)} queries, loaded in "
          f"{time.perf_counter() - t:.1f} s; faiss {faiss.__version__}, {a.threads} threads",
          file=sys.stderr)

    cases = []
    print(f"{'queries':>8} | {'median ms':>10} | {'min ms':>10} | {'reps':>10}")
    for c in (int(x) for x in a.cases.split(",")):
        if c > len(queries):
            sys.exit(f"search_faiss: case {c} needs {c} queries, the file has {len(queries)}")
        q = np.ascontiguousarray(queries[:c])
        t = time.perf_counter()
        index.search(q, a.k)
        warm = time.perf_counter() - t
        reps = min(max(a.reps, 1), max(int(10 / warm), 2))
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            scores, ids = index.search(q, a.k)
            times.append((time.perf_counter() - t) * 1e3)
        med = statistics.median(times)
        print(f"{c:>8} | {med:>10.2f} | {min(times):>10.2f} | {reps:>10}")
        cases.append({"queries": c, "median_ms": med, "times_ms": times,
                      "ids": ids.tolist(), "scores": scores.tolist()})
    if a.json:
        out = Path(a.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"impl": "faiss", "version": faiss.__version__,
                                   "n": int(index.ntotal), "dim": a.dim, "k": a.k,
                                   "threads": a.threads, "cases": cases}))
        print(f"search_faiss: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
