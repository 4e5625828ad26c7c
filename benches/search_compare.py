#!/usr/bin/env python3
"""Tessera's exact top-k inner-product search against faiss.IndexFlatIP, on the same vectors.

  python3 benches/search_compare.py              3 rounds, about 2–3 minutes on 2 cores
  python3 benches/search_compare.py --rounds 5 --cases 1,16

Needs the venv of scripts/setup-faiss.sh (faiss-cpu and numpy; TESSERA_FAISS_VENV, default
~/.cache/tessera/faiss-venv). Steps:

1. Vectors: 1,000,000 × 256 base and 1,000 query vectors, each drawn from numpy's PCG64 (seeded)
   as standard normals and scaled to unit length, stored once as raw little-endian f32 under
   ~/.cache/tessera/bench/ (--data-dir) and generated only when missing (1 GB, about 10 s).
2. Builds benches/search_topk.rs with `cargo bench --bench search_topk --no-run`, with
   CARGO_TARGET_DIR defaulting to ~/.cache/tessera/target.
3. Runs the two benches in turn, each in its own process and alternating which goes first,
   --rounds times: both implementations see the same background load. Each process loads the
   vectors, then per case (1, 16 and 1000 queries: the first c query vectors) searches once to
   warm up and times --reps searches. Both use --threads threads (default: all cores): rayon
   for Tessera, OpenMP for faiss. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the
   faiss process's environment so that its BLAS picks its own best kernel.
4. Checks that both return the same ids for every query (positions where they differ must
   hold scores within 1e-5 of each other on both sides: rounding near a tie, not a miss).

Prints: case | tessera ms | faiss ms | ratio (tessera ms ÷ faiss ms; target ≤ 1.0), each time
the median of all timed searches of all rounds, and writes target/bench/search_compare.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from cargo_bench import bench_executable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
TIE_TOL = 1e-5


def faiss_python():
    venv = Path(os.environ.get("TESSERA_FAISS_VENV", Path.home() / ".cache/tessera/faiss-venv"))
    py = venv / "bin" / "python"
    if not py.exists():
        sys.exit(f"no faiss venv at {venv}: run `bash scripts/setup-faiss.sh` first")
    return str(py)


def data_paths(a):
    d = Path(a.data_dir).expanduser()
    base = d / f"search_base_{a.n}x{a.dim}_seed{a.seed}.f32"
    queries = d / f"search_queries_{a.nq}x{a.dim}_seed{a.seed}.f32"
    return base, queries


def generate(path, rows, dim, seed, stream):
    """Unit vectors from numpy's PCG64 seeded with (seed, stream), written in 64k-row blocks."""
    import numpy as np

    rng = np.random.default_rng([seed, stream])
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        for start in range(0, rows, 65536):
            x = rng.standard_normal((min(65536, rows - start), dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            f.write(x.astype("<f4").tobytes())
    tmp.rename(path)


def ensure_data(a, py):
    base, queries = data_paths(a)
    if base.exists() and queries.exists():
        return base, queries
    base.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {base} and {queries}", file=sys.stderr)
    # numpy lives in the faiss venv, not necessarily in the python running this script
    cmd = [py, __file__, "--generate-only", "--n", str(a.n), "--nq", str(a.nq),
           "--dim", str(a.dim), "--seed", str(a.seed), "--data-dir", str(a.data_dir)]
    if subprocess.run(cmd).returncode != 0:
        sys.exit("generating the vectors failed")
    return base, queries


def run(cmd, env, out):
    load = os.getloadavg()[0]
    print(f"\n$ {' '.join(cmd)}   (load {load:.2f})", file=sys.stderr)
    p = subprocess.run(cmd, cwd=ROOT, env=env)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}")
    report = json.loads(out.read_text())
    report["load_before"] = load
    return report


def compare_ids(t_case, f_case):
    """(queries with identical ids, queries differing only at near-ties, real mismatches)."""
    same = ties = 0
    bad = []
    for qi, (ti, fi, ts, fs) in enumerate(zip(t_case["ids"], f_case["ids"], t_case["scores"],
                                               f_case["scores"])):
        if ti == fi:
            same += 1
        elif len(ti) == len(fi) and all(abs(x - y) <= TIE_TOL for x, y in zip(ts, fs)):
            ties += 1
        else:
            bad.append(qi)
    return same, ties, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="base vectors")
    ap.add_argument("--nq", type=int, default=1000, help="query vectors in the file")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cases", default="1,16,1000", help="comma list of query counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5, help="timed searches per case and round")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data-dir", default=str(Path.home() / ".cache/tessera/bench"))
    ap.add_argument("--exe", help="a built search_topk executable (skips the build)")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.generate_only:
        base, queries = data_paths(a)
        if not base.exists():
            generate(base, a.n, a.dim, a.seed, 0)
        if not queries.exists():
            generate(queries, a.nq, a.dim, a.seed, 1)
        return

    cases = [int(c) for c in a.cases.split(",") if c.strip()]
    if max(cases) > a.nq:
        sys.exit(f"a case asks for more than --nq {a.nq} queries")
    py = faiss_python()
    base, queries = ensure_data(a, py)
    exe = a.exe or bench_executable("search_topk")
    OUT.mkdir(parents=True, exist_ok=True)

    common = ["--base", str(base), "--queries", str(queries), "--dim", str(a.dim), "--k", str(a.k),
              "--cases", ",".join(map(str, cases)), "--reps", str(a.reps)]
    rust_env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    faiss_env = {k: v for k, v in os.environ.items()
                 if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    faiss_env["OMP_NUM_THREADS"] = str(a.threads)
    t_json, f_json = OUT / "search_topk.json", OUT / "search_faiss.json"
    t_cmd = [exe, *common, "--json", str(t_json)]
    f_cmd = [py, "benches/search_faiss.py", *common, "--threads", str(a.threads),
             "--json", str(f_json)]

    rounds = []
    for r in range(a.rounds):
        order = [("tessera", t_cmd, rust_env, t_json), ("faiss", f_cmd, faiss_env, f_json)]
        if r % 2:
            order.reverse()  # neither side always runs right after the other's page-cache churn
        rounds.append({name: run(cmd, env, out) for name, cmd, env, out in order})

    results = []
    for ci, c in enumerate(cases):
        t_times = [x for rd in rounds for x in rd["tessera"]["cases"][ci]["times_ms"]]
        f_times = [x for rd in rounds for x in rd["faiss"]["cases"][ci]["times_ms"]]
        same, ties, bad = compare_ids(rounds[-1]["tessera"]["cases"][ci],
                                      rounds[-1]["faiss"]["cases"][ci])
        t_ms, f_ms = statistics.median(t_times), statistics.median(f_times)
        results.append({
            "queries": c, "tessera_ms": t_ms, "faiss_ms": f_ms, "ratio": t_ms / f_ms,
            "tessera_times_ms": t_times, "faiss_times_ms": f_times,
            "tessera_round_medians_ms": [rd["tessera"]["cases"][ci]["median_ms"] for rd in rounds],
            "faiss_round_medians_ms": [rd["faiss"]["cases"][ci]["median_ms"] for rd in rounds],
            "ids_identical": same, "ids_near_tie": ties, "ids_mismatch": bad,
        })

    head = ["case", "tessera ms", "faiss ms", "ratio tessera/faiss", "target ≤ 1.0", "same ids"]
    rows = [[f"{x['queries']} {'query' if x['queries'] == 1 else 'queries'}",
             f"{x['tessera_ms']:.1f}", f"{x['faiss_ms']:.1f}", f"{x['ratio']:.2f}",
             "met" if x["ratio"] <= 1.0 else "MISSED",
             f"{x['ids_identical'] + x['ids_near_tie']}/{x['queries']}"] for x in results]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")
    tf = rounds[-1]["faiss"]
    print(f"\n{a.n:,} × {a.dim} unit vectors, top-{a.k}, {a.threads} threads; medians of "
          f"{a.rounds} rounds × {a.reps} timed searches (fewer for slow cases); faiss "
          f"{tf.get('version', '?')} IndexFlatIP. ratio = tessera ms ÷ faiss ms.")
    for x in results:
        if x["ids_near_tie"]:
            print(f"{x['queries']} queries: {x['ids_near_tie']} differ only in the order of "
                  f"scores within {TIE_TOL} (rounding)")

    report = {
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "n": a.n, "dim": a.dim, "k": a.k, "seed": a.seed, "threads": a.threads,
        "faiss_version": tf.get("version"), "base": str(base), "queries": str(queries),
        "load_before": [{name: rd[name]["load_before"] for name in rd} for rd in rounds],
        "cases": results,
    }
    (OUT / "search_compare.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT / 'search_compare.json'}")
    mismatched = [x["queries"] for x in results if x["ids_mismatch"]]
    if mismatched:
        for x in results:
            if x["ids_mismatch"]:
                print(f"{x['queries']} queries: different ids for queries {x['ids_mismatch'][:10]}",
                      file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
