"""The compare scripts' one way to build a Rust bench and find its executable."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_executable(name):
    """`cargo bench --bench NAME --no-run` (into ~/.cache/tessera/target unless
    CARGO_TARGET_DIR says otherwise); returns the executable's path."""
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache/tessera/target"))
    cmd = ["cargo", "bench", "--bench", name, "--no-run", "--message-format=json"]
    print(f"building: {' '.join(cmd)} (CARGO_TARGET_DIR={env['CARGO_TARGET_DIR']})",
          file=sys.stderr)
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("cargo bench --no-run failed")
    exe = None
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == name:
            exe = msg.get("executable") or exe
    if not exe:
        sys.exit(f"could not find the {name} executable in cargo's output")
    return exe
