"""`kernelarena run` over the example dataset with the local engine and with `--engine ray` on one machine: wall
time side by side, and every (solution, workload)'s status compared between the two runs.

    python3 -m benchmarks.ray_walltime [--smallest N] [--definition NAME ...] [--out DIR] [RUN OPTIONS]

Other options (e.g. ``--rounds 1 --reps 1`` for a quick CPU run) go to both `kernelarena run` calls.

Each run goes through the CLI in a fresh process on a fresh copy of the dataset (so each writes its own
traces), after a local `--smallest 1` run that fills the build cache both engines share. Ray starts on this
machine (no address): the Ray run's wall time includes Ray's start-up, which the closing lines show apart.
With ``--out`` (default $OUT) writes DIR/ray_walltime_latest.md and .json and upserts DIR/ray_walltime.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import add_out_argument, publish, run_caption, stamp
from kernelarena.store import TraceSet

ROOT = Path(__file__).resolve().parents[1]
KEY = ["workloads", "engine"]
COLUMNS = [*KEY, "wall s", "traces", "passed", "vs local"]
TITLE = """# `kernelarena run` wall time: the local engine vs `--engine ray` on one machine

`python3 -m benchmarks.ray_walltime --out $OUT` (example dataset, build cache warmed by a local `--smallest 1`
run first; Ray started on the same machine by the run): wall seconds, traces written, PASSED traces, and wall time
over the local engine's. Statuses per (solution, workload) are compared in `ray_walltime_latest.md`."""


def run_cli(extra: list, label: str) -> dict:
    """One `kernelarena run` on a fresh copy of the example dataset; wall time, closing lines and statuses."""
    with tempfile.TemporaryDirectory(prefix=f"raywall-{label}-") as tmp:
        dataset = Path(tmp) / "dataset"
        shutil.copytree(ROOT / "examples" / "dataset", dataset, ignore=shutil.ignore_patterns(".*.lock"))
        shutil.rmtree(dataset / "traces", ignore_errors=True)  # only this run's traces are read back
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "kernelarena.cli", "run", str(dataset), *extra],
                             capture_output=True, text=True, cwd=tmp, env=dict(os.environ))
        wall = time.perf_counter() - started
        statuses = {}
        if (dataset / "traces").exists():
            loaded = TraceSet.load(dataset, strict=False)
            for traces in loaded.traces.values():
                for trace in traces:
                    statuses[f"{trace.solution} @ {trace.workload.uuid[:8]}"] = trace.evaluation.status.value
    text = out.stdout + out.stderr
    closing = [line.strip() for line in text.splitlines() if "kernelarena run:" in line or "Ray" in line]
    closing += [run_caption(text)] if run_caption(text) else []
    if out.returncode != 0:
        print(f"{label}: exit {out.returncode}\n{text[-4000:]}", file=sys.stderr)
    # As each run ends, so that a capped call keeps the runs that finished.
    print(f"{label}: {wall:.1f} s, exit {out.returncode}, {len(statuses)} traces; " + " / ".join(closing), flush=True)
    return {"label": label, "wall_s": wall, "returncode": out.returncode, "closing": closing,
            "statuses": statuses, "passed": sum(s == "PASSED" for s in statuses.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_argument(parser)
    parser.add_argument("--definition", action="append", default=[], help="only this definition (repeatable)")
    parser.add_argument("--smallest", type=int, default=None, help="only the N smallest workloads per definition")
    args, passthrough = parser.parse_known_args()
    only = [flag for name in args.definition for flag in ("--definition", name)]
    extra = (["--smallest", str(args.smallest)] if args.smallest else []) + only + passthrough
    warm = run_cli(["--smallest", "1", *only, *passthrough], "warm-up (local)")
    local = run_cli(extra, "local")
    ray = run_cli([*extra, "--engine", "ray"], "ray")
    keys = sorted(set(local["statuses"]) | set(ray["statuses"]))
    differ = [(k, local["statuses"].get(k, "-"), ray["statuses"].get(k, "-")) for k in keys
              if local["statuses"].get(k) != ray["statuses"].get(k)]
    run = stamp()
    workloads = str(args.smallest or "all") + "".join(f" {name}" for name in args.definition)
    command = "python3 -m benchmarks.ray_walltime" + (f" --smallest {args.smallest}" if args.smallest else "") \
        + "".join(f" {f}" for f in only + passthrough)
    lines = [f"# `kernelarena run`: local engine vs `--engine ray` ({run.machine}, {run.date})", "",
             f"Command: `{command}`.", "",
             "| run | exit | wall s | traces | PASSED | vs local |", "|---|---|---|---|---|---|"]
    for row in (warm, local, ray):
        lines.append(f"| {row['label']} | {row['returncode']} | {row['wall_s']:.1f} | {len(row['statuses'])} | "
                     f"{row['passed']} | {row['wall_s'] / local['wall_s']:.2f}x |")
    lines += ["", f"Statuses compared over {len(keys)} (solution, workload) pairs: "
              + (f"{len(differ)} differ." if differ else "all the same."), ""]
    lines += [f"- differs: {k}: local {a}, ray {b}" for k, a, b in differ]
    for row in (warm, local, ray):
        lines += [f"- {row['label']}: " + " / ".join(row["closing"])]
    print("\n".join(lines))
    if args.out is not None:
        table = [{"workloads": workloads, "engine": row["label"], "wall s": f"{row['wall_s']:.1f}",
                  "traces": len(row["statuses"]), "passed": row["passed"],
                  "vs local": f"{row['wall_s'] / local['wall_s']:.2f}x"} for row in (warm, local, ray)]
        path = publish("ray_walltime", args.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS, rows=table,
                       run=run)
        (args.out / "ray_walltime_latest.json").write_text(json.dumps(
            {"machine": run.machine, "date": run.date, "runs": [warm, local, ray],
             "differ": differ}, indent=1))
        print(f"wrote {path} and {args.out / 'ray_walltime_latest.md'}")
    if differ or local["returncode"] or ray["returncode"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
