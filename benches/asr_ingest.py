#!/usr/bin/env python3
"""Benchmark: `tessera transcribe` and `tessera ingest` against whisper.cpp's own whisper-cli,
built from the same whisper.cpp sources that whisper-rs vendors, on the same audio, model file
and thread count. Prints a table and writes JSON (default: target/bench/asr_ingest.json).

  python3 benches/asr_ingest.py [--reps 3] [--threads 2] [--out FILE]

Needs the assets (scripts/fetch-assets.sh); builds tessera (release) and whisper-cli itself."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one run of cmd (the process itself, via wait4)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "asr_ingest.json"))
    args = ap.parse_args()

    assets = os.environ.get("TESSERA_ASSETS", os.path.expanduser("~/.cache/tessera/assets"))
    model = os.path.join(assets, "whisper", "ggml-tiny.en.bin")
    wav = os.path.join(assets, "composed", "minute.wav")
    video = os.path.join(assets, "composed", "minute.mp4")
    for f in (model, wav, video):
        if not os.path.exists(f):
            sys.exit(f"missing {f}: run scripts/fetch-assets.sh")

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    tessera = os.path.join(target, "release", "tessera")
    cli = subprocess.run([os.path.join(ROOT, "scripts", "build-whisper-cli.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip()
    t = str(args.threads)
    cases = {
        # greedy decoding on both sides: whisper-cli's defaults use 5 beams, tessera's one
        "whisper-cli (minute.wav)": lambda d: [cli, "-m", model, "-f", wav, "-t", t, "-l", "en",
                                               "-bs", "1", "-bo", "1", "-np"],
        "tessera transcribe (minute.wav)": lambda d: [tessera, "--data-dir", d, "transcribe", wav,
                                                      "--model", model, "--threads", t, "--language", "en"],
        "tessera ingest (minute.mp4)": lambda d: [tessera, "--data-dir", d, "ingest", "--dataset", "bench",
                                                  "--model", model, "--threads", t, "--language", "en", video],
    }
    runs = {name: [] for name in cases}
    for _ in range(args.reps):  # interleaved, so drift hits every case alike
        for name, make in cases.items():
            with tempfile.TemporaryDirectory() as d:
                runs[name].append(timed(make(d)))

    base = statistics.median(w for w, _ in runs["whisper-cli (minute.wav)"])
    rows = []
    for name, rs in runs.items():
        wall = statistics.median(w for w, _ in rs)
        rows.append({"case": name, "median_s": round(wall, 3), "min_s": round(min(w for w, _ in rs), 3),
                     "peak_rss_mib": round(max(m for _, m in rs), 1), "vs_whisper_cli": round(wall / base, 3)})
    print(f"{'case':<34} {'median s':>9} {'min s':>7} {'peak MiB':>9} {'× whisper-cli':>14}")
    for r in rows:
        print(f"{r['case']:<34} {r['median_s']:>9.2f} {r['min_s']:>7.2f} {r['peak_rss_mib']:>9.1f} {r['vs_whisper_cli']:>14.3f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"threads": args.threads, "reps": args.reps, "audio_s": 60.0, "model": "tiny.en (f16)",
                   "cpu_count": os.cpu_count(), "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
