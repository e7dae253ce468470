"""Wall time of `kernelarena run` over the example dataset with the process-per-solution isolation against a
baseline checkout of the package (the shared-worker design), on the same machine, build cache warmed first.


    python3 benchmarks/isolation_walltime.py --baseline .before [--out DIR] [--smallest N]

``--baseline`` is a folder holding an older ``kernelarena/`` package (e.g. ``git archive <commit> kernelarena |
tar -x -C .before``). Both runs go through the CLI in a fresh process on a fresh copy of the dataset. Writes
DIR/isolation_walltime.md and .json (DIR defaults to $OUT, else the current folder).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(package_root: Path, extra: list, label: str) -> dict:
    """One `kernelarena run` with ``package_root`` first on PYTHONPATH; its wall time and closing line."""
    with tempfile.TemporaryDirectory(prefix=f"walltime-{label}-") as tmp:
        dataset = Path(tmp) / "dataset"
        shutil.copytree(ROOT / "examples" / "dataset", dataset, ignore=shutil.ignore_patterns(".*.lock"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root.resolve()),
                                                           os.environ.get("PYTHONPATH", "")]))
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(dataset), "--no-save", *extra],
                             capture_output=True, text=True, env=env, cwd=tmp)
        wall = time.perf_counter() - started
    text = out.stdout + out.stderr
    summary = next((line.strip() for line in text.splitlines() if "kernelarena run:" in line), "")
    spent = " ".join(line.strip() for line in text.splitlines() if "time spent" in line or "restarts" in line)
    if out.returncode != 0:
        print(text[-4000:], file=sys.stderr)
    return {"label": label, "wall_s": wall, "returncode": out.returncode, "summary": summary, "spent": spent,
            "traces": int(m.group(1)) if (m := re.search(r"(\d+) traces", summary)) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="folder holding the older kernelarena/")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--smallest", type=int, default=None, help="only the N smallest workloads per definition")
    args = parser.parse_args()
    extra = ["--smallest", str(args.smallest)] if args.smallest else []
    # Builds are per solution, not per workload: one workload each compiles every build into the cache, which
    # both versions share (their build code and so their cache keys are the same).
    warm = [run_cli(ROOT, ["--smallest", "1"], "warm-up (isolated)")]
    rows = [run_cli(args.baseline, extra, "baseline: one worker per device"),
            run_cli(ROOT, extra, "isolated: reference process + fresh process per solution")]
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    today = datetime.date.today().isoformat()
    lines = [f"# `kernelarena run` wall time, isolation vs baseline ({device}, {today})", "",
             f"Command: `python3 benchmarks/isolation_walltime.py --baseline {args.baseline}"
             + (f" --smallest {args.smallest}" if args.smallest else "") + "`; example dataset, build cache warmed "
             "by a `--smallest 1` run first.", "",
             "| run | wall s | traces | closing line |", "|---|---|---|---|"]
    for row in warm + rows:
        lines.append(f"| {row['label']} | {row['wall_s']:.1f} | {row['traces']} | {row['summary']} |")
    lines += ["", f"Isolated / baseline: **{ratio:.2f}x** (target: within 1.3x).", ""]
    lines += [f"- {row['label']}: {row['spent']}" for row in warm + rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "isolation_walltime.md").write_text("\n".join(lines) + "\n")
    (args.out / "isolation_walltime.json").write_text(json.dumps({"device": device, "date": today,
                                                                  "ratio": ratio, "runs": warm + rows}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
