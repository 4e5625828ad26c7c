#!/usr/bin/env python3
"""easy-VQA label efficiency: fine-tuning on 10 % of the training questions, pre-trained vs scratch.

  python3 benches/label_efficiency.py            the whole table, 2–3 hours on 2 cores
  python3 benches/label_efficiency.py --seeds 0  one fine-tuning seed per arm, about 1.8 hours

Needs the assets (scripts/fetch-assets.sh); builds tessera (release; CARGO_TARGET_DIR defaults
to ~/.cache/tessera/target). Everything lands in its own store (--store, default
~/.cache/tessera/bench/label-efficiency), so a second invocation skips finished runs and resumes
an interrupted one from its last checkpoint.

1. Imports easy-VQA (all 5,000 images, 48,248 questions) as data set `easy` when missing.
2. Pre-trains models/easyvqa-pretrain.toml (MLM with 75 % of the caption masked + contrastive;
   captions made of each image's open-question answers, e.g. "red circle") in stages
   (--pretrain-steps 3000,1000: each stage continues the previous one with `pretrain --from`, its
   warm-up and cosine restarted), pre-training seed 0.
3. For each fine-tuning seed (which also picks the 10 % subset): `finetune vqa --train-fraction
   0.1` for --finetune-steps from the pre-trained run and from scratch, with the same config and
   settings, then `eval vqa` on all 9,673 test questions.

Prints: arm | seed | accuracy | yes/no | other, each arm's mean ± std and the gap (pre-trained −
scratch, per seed), and writes target/bench/label_efficiency.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench" / "label_efficiency.json"
CONFIG = ROOT / "models" / "easyvqa-pretrain.toml"


def build_tessera():
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache/tessera/target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "tessera"], cwd=ROOT,
                   env=env, check=True)
    return str(Path(env["CARGO_TARGET_DIR"]) / "release" / "tessera")


class Store:
    def __init__(self, tessera, path):
        self.tessera, self.path = tessera, path

    def run(self, *args, capture=False):
        cmd = [self.tessera, "--data-dir", str(self.path), *map(str, args)]
        print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           text=True)
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}")
        return p.stdout

    def json(self, *args):
        return json.loads(self.run(*args, "--json", capture=True))

    def train(self, name, *args):
        """Starts run NAME, resumes it if it was interrupted, or leaves it if finished."""
        status = {r["name"]: r["status"] for r in self.json("runs", "list")}.get(name)
        if status == "finished":
            return
        if status is None:
            self.run(*args, "--run", name)
        else:
            self.run("resume", name)


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default=Path.home() / ".cache/tessera/bench/label-efficiency")
    ap.add_argument("--pretrain-steps", default="3000,1000")
    ap.add_argument("--finetune-steps", type=int, default=1200)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seeds", default="0,1,2", help="fine-tuning seeds")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()

    assets = Path(os.environ.get("TESSERA_ASSETS", Path.home() / ".cache/tessera/assets"))
    data = assets / "easy-vqa" / "data"
    if not (data / "answers.txt").exists():
        sys.exit(f"missing {data}: run scripts/fetch-assets.sh")
    store = Store(build_tessera(), Path(a.store).expanduser())
    if "easy" not in {d["name"] for d in store.json("datasets", "list")}:
        store.run("import", "--dataset", "easy", "easy-vqa", data)

    stages = [int(s) for s in a.pretrain_steps.split(",")]
    parent = None
    for i, steps in enumerate(stages):
        name = f"pre-{'-'.join(map(str, stages[:i + 1]))}"
        store.train(name, "pretrain", "--dataset", "easy", "--config", CONFIG, "--steps", steps,
                    "--seed", 0, *(["--from", parent] if parent else []))
        parent = name

    arms = {"pretrained": ["--from", parent], "scratch": ["--from", "scratch", "--config", CONFIG]}
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for arm, init in arms.items():
            base = parent if arm == "pretrained" else "scratch"
            name = f"{base}-ft{a.finetune_steps}-s{seed}"
            store.train(name, "finetune", "vqa", "--dataset", "easy", *init, "--steps",
                        a.finetune_steps, "--seed", seed, "--train-fraction", a.fraction)
            e = store.json("eval", "vqa", "--dataset", "easy", name)
            per_type = {t: v["accuracy"] for t, v in e["per_type"].items()}
            rows.append({"arm": arm, "seed": seed, "run": name, "accuracy": e["accuracy"],
                         "yes/no": per_type.get("yes/no"), "other": per_type.get("other"),
                         "questions": e["questions"]})

    print(f"\n{'arm':<11} {'seed':>4} {'accuracy':>9} {'yes/no':>7} {'other':>7}")
    for r in rows:
        print(f"{r['arm']:<11} {r['seed']:>4} {100 * r['accuracy']:>9.1f} "
              f"{100 * r['yes/no']:>7.1f} {100 * r['other']:>7.1f}")
    summary = {}
    for arm in arms:
        m, s = mean_std([100 * r["accuracy"] for r in rows if r["arm"] == arm])
        summary[arm] = {"mean": m, "std": s}
        print(f"{arm:<11} mean {m:.1f} ± {s:.1f}")
    by_seed = {(r["arm"], r["seed"]): r["accuracy"] for r in rows}
    gaps = [100 * (by_seed[("pretrained", s)] - by_seed[("scratch", s)])
            for s in sorted({r["seed"] for r in rows})]
    m, s = mean_std(gaps)
    summary["gap"] = {"mean": m, "std": s, "per_seed": gaps}
    print(f"gap (pre-trained − scratch): {m:+.1f} ± {s:.1f} points (target ≥ +10)")

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"pretrain_stages": stages, "finetune_steps": a.finetune_steps,
                               "fraction": a.fraction, "rows": rows, "summary": summary},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
