#!/usr/bin/env python3
"""One run comparing Tessera's pre-training step with the same step in PyTorch, on this machine.

  python3 benches/pretrain_compare.py                 both cases, about 5–8 minutes on 2 cores
  python3 benches/pretrain_compare.py --cases tiny    one case

Builds benches/pretrain_step.rs (`cargo bench --no-run`; honours CARGO_TARGET_DIR), then for each
case runs the Rust bench and benches/pretrain_torch.py (the venv of scripts/setup-torch.sh,
OMP_NUM_THREADS = all cores), one after the other, each in its own process so that each peak RSS
is its own:

  tiny  batch 32, mlm,mim,itm,contrastive   2 warm-up + 10 timed steps
  small batch 32, mlm,mim,itm,contrastive   1 warm-up +  3 timed steps

and prints: case | tessera s/step | torch s/step | ratio | GEMM-peak shares | peak RSS, where
ratio = torch s/step ÷ tessera s/step = Tessera's step rate ÷ PyTorch's (≥ 1.0: Tessera is
faster). Each implementation's GEMM-peak share is its matmul FLOPs per second over its own best
f32 1024²/2048² matmul rate. Writes target/bench/pretrain.json (both reports per case).
Steps are timed on a machine that may be busy: the load average before each run is recorded.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cargo_bench import bench_executable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
OBJECTIVES = "mlm,mim,itm,contrastive"
CASES = {
    "tiny": {"config": "tiny", "batch": 32, "warmup": 2, "steps": 10},
    "small": {"config": "small", "batch": 32, "warmup": 1, "steps": 3},
}


def torch_python():
    venv = Path(os.environ.get("TESSERA_TORCH_VENV", Path.home() / ".cache/tessera/torch-venv"))
    py = venv / "bin" / "python"
    if not py.exists():
        sys.exit(f"no PyTorch venv at {venv}: run `bash scripts/setup-torch.sh` first")
    return str(py)


def run(cmd, env):
    load = os.getloadavg()[0]
    print(f"\n$ {' '.join(cmd)}   (load {load:.2f})", file=sys.stderr)
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return load, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="tiny,small", help="comma list of: " + ", ".join(CASES))
    ap.add_argument("--exe", help="a built pretrain_step executable (skips the build)")
    ap.add_argument("--breakdown", action="store_true", help="also split forward/backward/optimizer")
    a = ap.parse_args()
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            sys.exit(f"unknown case {c!r} (known: {', '.join(CASES)})")
    exe = a.exe or bench_executable("pretrain_step")
    py = torch_python()
    threads = str(os.cpu_count())
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    OUT.mkdir(parents=True, exist_ok=True)

    results = []
    for name in cases:
        c = CASES[name]
        args = ["--config", c["config"], "--batch", str(c["batch"]), "--warmup", str(c["warmup"]),
                "--steps", str(c["steps"]), "--objectives", OBJECTIVES]
        if a.breakdown:
            args.append("--breakdown")
        rust_json, torch_json = OUT / f"pretrain_step_{name}.json", OUT / f"pretrain_torch_{name}.json"
        r_load, r_wall = run([exe, *args, "--json", str(rust_json)], env)
        t_load, t_wall = run([py, "benches/pretrain_torch.py", *args, "--json", str(torch_json)], env)
        r, t = json.loads(rust_json.read_text()), json.loads(torch_json.read_text())
        if abs(r["mean_step_gflop"] - t["mean_step_gflop"]) > 1e-6 * r["mean_step_gflop"]:
            print(f"warning: {name}: the two steps' FLOPs differ ({r['mean_step_gflop']:.3f} vs "
                  f"{t['mean_step_gflop']:.3f} GFLOP): shapes are not the same", file=sys.stderr)
        results.append({
            "case": name, **c, "objectives": OBJECTIVES,
            "tessera_s_per_step": r["median_s"], "torch_s_per_step": t["median_s"],
            "ratio": t["median_s"] / r["median_s"],
            "tessera_gemm_share": r["peak_share"], "torch_gemm_share": t["peak_share"],
            "tessera_peak_rss_mib": r["peak_rss_mib"], "torch_peak_rss_mib": t["peak_rss_mib"],
            "step_gflop": r["mean_step_gflop"],
            "load_before": {"tessera": r_load, "torch": t_load},
            "wall_s": {"tessera": r_wall, "torch": t_wall},
            "tessera": r, "torch": t,
        })

    head = ["case", "tessera s/step", "torch s/step", "ratio", "tessera GEMM share",
            "torch GEMM share", "tessera peak RSS", "torch peak RSS"]
    rows = [[x["case"], f"{x['tessera_s_per_step']:.3f}", f"{x['torch_s_per_step']:.3f}",
             f"{x['ratio']:.2f}",
             f"{100 * x['tessera_gemm_share']:.1f}% of {x['tessera']['gemm_peak_gflops']:.0f}",
             f"{100 * x['torch_gemm_share']:.1f}% of {x['torch']['gemm_peak_gflops']:.0f}",
             f"{x['tessera_peak_rss_mib']:.0f} MiB", f"{x['torch_peak_rss_mib']:.0f} MiB"]
            for x in results]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths)))
    print("\nratio = torch s/step ÷ tessera s/step (Tessera's step rate ÷ PyTorch's; target ≥ 1.0). "
          "GEMM share: matmul GFLOP/s of the step over each one's own best f32 GEMM GFLOP/s.")
    for x in results:
        if x["case"] == "small":
            ok = x["tessera_peak_rss_mib"] <= 4096
            print(f"small @ batch 32 peak RSS {x['tessera_peak_rss_mib']:.0f} MiB: "
                  f"{'within' if ok else 'OVER'} the 4 GB target")
    report = {"machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())}, "cases": results}
    (OUT / "pretrain.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT / 'pretrain.json'}")


if __name__ == "__main__":
    main()
