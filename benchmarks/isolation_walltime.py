"""Wall time of `kernelarena run` over the example dataset with the process-per-solution isolation against a
baseline checkout of the package (the shared-worker design), on the same machine, build cache warmed first.

    python3 -m benchmarks.isolation_walltime --baseline .before [--out DIR] [--smallest N] [--definition NAME ...] \
        [--variant NAME=VALUE ...] [--variant-args '--timing events' ...] [--profile] [--rounds N] [--lock-timeline]

``--baseline`` is a folder holding an older ``kernelarena/`` package (e.g. ``git archive 6726a6a^ kernelarena |
tar -x -C .before``: the last commit before the process-per-solution isolation). With ``--definition`` both runs get
a copy holding only those definitions (that older package cannot load the tensor-expression constraints of
today's other definitions). Both runs go through the CLI in a fresh process on a fresh copy of the dataset. With
``--out`` (default $OUT) writes DIR/isolation_walltime_latest.md and .json and upserts the rows into the results
table DIR/isolation_walltime.md (benchmarks/common.py); without either, only prints. With ``--profile`` the
reference processes of the isolated run profile their requests (KERNELARENA_PROFILE_DIR) and the functions that
took their time are written to DIR/isolation_walltime_profile.md (its wall time then includes cProfile's cost).
With ``--rounds N`` the baseline, the isolated run and the variants run N times, interleaved, and each one's wall
time is the median of its rounds. With ``--lock-timeline`` each isolated run's device lock is sampled from
/proc/locks (benchmarks/lock_timeline.py): how long it was held alone, held shared, and free.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import add_out_argument, publish, run_caption, stamp
from benchmarks.lock_timeline import LockTimeline
from benchmarks.lock_timeline import summary as lock_summary
from benchmarks.reproducibility import pair_spread

ROOT = Path(__file__).resolve().parents[1]
KEY = ["smallest", "run"]
COLUMNS = [*KEY, "wall s", "traces", "vs baseline"]
TITLE = """# `kernelarena run` wall time: process-per-solution isolation vs a baseline checkout

`python3 -m benchmarks.isolation_walltime --baseline .before --smallest 1 --out $OUT` (example dataset, build cache
warmed by a `--smallest 1` run first; `smallest`: workloads per definition, "all" without the option): wall seconds
of each `kernelarena run`, the traces it wrote, and its wall time over the baseline's (the target: isolated within
1.3x). One row per machine and run, the latest of each; the latest run's full output (closing lines, where the
time went) is `isolation_walltime_latest.md` beside this file."""


def copy_dataset(dst: Path, names: list) -> None:
    """The example dataset into ``dst``; with ``names``, only those definitions' files (definition, solutions,
    workloads, blobs), so that a baseline checkout older than today's other definitions can load it."""
    src = ROOT / "examples" / "dataset"
    if not names:
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*.lock"))
        return
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_file() and not path.name.startswith(".") and (set(names) & set(rel.parts) or path.stem in names):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst / rel)


def run_cli(package_root: Path, extra: list, label: str, names: list, variables: dict = None,
            timeline: bool = False) -> dict:
    """One `kernelarena run` with ``package_root`` first on PYTHONPATH (and ``variables`` set); its wall time and
    closing line, and with ``timeline`` where its device lock on cuda:0 spent the time (benchmarks/lock_timeline.py;
    a run without the lock, the baseline's, reads "no lock file" throughout)."""
    with tempfile.TemporaryDirectory(prefix=f"walltime-{label}-") as tmp:
        dataset = Path(tmp) / "dataset"
        copy_dataset(dataset, names)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root.resolve()),
                                                           os.environ.get("PYTHONPATH", "")]),
                   **(variables or {}))
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "kernelarena.cli", "run", str(dataset), *extra],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        # The run's lock file: bench/quiet.make's name, in the temporary folder the run inherits from us.
        sampler = LockTimeline(Path(tempfile.gettempdir()) / f"kernelarena-{process.pid}-cuda0.lock").start() \
            if timeline else None
        try:
            stdout, stderr = process.communicate()
        except BaseException:  # a step's cap (SIGINT): the run must not go on using the GPU after us
            process.kill()
            process.wait()
            raise
        finally:
            lock = sampler.stop() if sampler else None
        wall = time.perf_counter() - started
        latencies = read_latencies(dataset / "traces")
    text = stdout + stderr
    summary = next((line.strip() for line in text.splitlines() if "kernelarena run:" in line), "")
    spent = run_caption(text)
    if process.returncode != 0:
        print(text[-4000:], file=sys.stderr)
    print(f"{label}: {wall:.1f} s; {summary}; {spent}" + (f"; {lock_summary(lock)}" if lock else ""),
          flush=True)  # as each run ends: a capped call keeps it
    return {"label": label, "wall_s": wall, "returncode": process.returncode, "summary": summary, "spent": spent,
            "lock": lock,
            "traces": int(m.group(1)) if (m := re.search(r"(\d+) traces", summary)) else None,
            "latencies": latencies}


def read_latencies(folder: Path) -> dict:
    """"solution|workload uuid" -> [latency ms, reference latency ms] of the PASSED traces a run appended under
    ``folder`` (the run's own copy of the dataset)."""
    found = {}
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            trace = json.loads(line) if line.strip() else {}
            evaluation = trace.get("evaluation") or {}
            performance = evaluation.get("performance") or {}
            if evaluation.get("status") == "PASSED" and performance.get("latency_ms"):
                found[f"{trace['solution']}|{trace['workload']['uuid']}"] = [
                    performance["latency_ms"], performance.get("reference_latency_ms")]
    return found


def spread_line(label: str, base: dict, other: dict) -> str:
    """How far ``other``'s latencies (and reference latencies) are from ``base``'s, pair by pair: the spread of
    benchmarks/reproducibility.py (|a-b|/min(a,b); pairs under 10 us within 0.5 us count as 0)."""
    def spread(a_ms, b_ms):
        if a_ms is None or b_ms is None or min(a_ms, b_ms) <= 0:
            return None
        return pair_spread(a_ms * 1e3, b_ms * 1e3)

    parts = []
    for index, what in ((0, "latency"), (1, "reference latency")):
        pairs = {key: spread(base[key][index], other[key][index]) for key in base.keys() & other.keys()}
        pairs = {key: value for key, value in pairs.items() if value is not None}
        if not pairs:
            continue
        worst = max(pairs, key=pairs.get)
        values = sorted(pairs.values())
        parts.append(f"{what}: median {100 * values[len(values) // 2]:.1f}%, over 5% {sum(v > 0.05 for v in values)}"
                     f" of {len(values)}, worst {100 * pairs[worst]:.1f}% ({worst.split('|')[0]})")
    return f"- {label} against the first isolated run: " + ("; ".join(parts) if parts else "no PASSED pair in both")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="folder holding the older kernelarena/")
    add_out_argument(parser)
    parser.add_argument("--definition", action="append", default=[],
                        help="only this definition (repeatable; passed to kernelarena run)")
    parser.add_argument("--smallest", type=int, default=None, help="only the N smallest workloads per definition")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE",
                        help="also an isolated run with this environment variable set (repeatable: one run each)")
    parser.add_argument("--variant-args", action="append", default=[], metavar="ARGS",
                        help="also an isolated run with these `kernelarena run` options, e.g. '--timing events' (the "
                             "baseline's timer: CUDA events, cold L2) to tell the timer's cost from isolation's "
                             "(repeatable: one run each)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the isolated run's reference processes (cProfile) and write where their time "
                             "went to isolation_walltime_profile.md")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the baseline, the isolated run and the variants this many times, interleaved "
                             "(baseline, isolated, ..., baseline, isolated, ...): the ratio is of the medians, so "
                             "one slow or fast baseline does not decide it (on the H200 the baseline took 55.9-65.4 s "
                             "in four calls of one day)")
    parser.add_argument("--lock-timeline", action="store_true",
                        help="sample the isolated runs' device lock (/proc/locks, every 2 ms) and report how long it "
                             "was held alone, held shared and free (the device idle for the run)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="skip the warm-up run: the build cache is warm already (an earlier step built the "
                             "same solutions in this KERNELARENA_CACHE_DIR)")
    args = parser.parse_args()
    variants = []
    for item in args.variant:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--variant {item!r}: expected NAME=VALUE")
        variants.append((name, value))
    only = [flag for name in args.definition for flag in ("--definition", name)]
    extra = (["--smallest", str(args.smallest)] if args.smallest else []) + only
    # Builds are per solution, not per workload: one workload each compiles every build into the cache, which
    # both versions share (their build code and so their cache keys are the same).
    names = args.definition
    plan = ([] if args.no_warm_up else [(ROOT, ["--smallest", "1", *only], "warm-up (isolated)", None)])
    profiles = Path(tempfile.mkdtemp(prefix="walltime-profile-")) if args.profile else None
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least 1")
    one_round = [(args.baseline, extra, "baseline: one worker per device", None),
                 (ROOT, extra, "isolated: reference process + fresh process per solution"
                  + (" (reference processes profiled)" if profiles else ""),
                  {"KERNELARENA_PROFILE_DIR": str(profiles)} if profiles else None)]
    one_round += [(ROOT, extra, f"isolated, {name}={value}", {name: value}) for name, value in variants]
    one_round += [(ROOT, extra + shlex.split(options), f"isolated, {options}", None) for options in args.variant_args]
    plan += one_round * args.rounds
    done = []
    for index, (package, options, label, variables) in enumerate(plan):
        done.append(run_cli(package, options, label, names, variables,
                            timeline=args.lock_timeline and package == ROOT))
        # Written after every run: a call cut short by its cap keeps the runs that ended.
        report(args, only, done[:0 if args.no_warm_up else 1], done[0 if args.no_warm_up else 1:],
               [p[2] for p in plan[index + 1:]])
        if profiles and variables and "KERNELARENA_PROFILE_DIR" in variables:
            text = profile_summary(profiles, label)
            print(text, flush=True)
            if args.out is not None:
                (args.out / "isolation_walltime_profile.md").write_text(text)


def profile_summary(folder: Path, label: str, top: int = 30) -> str:
    """Where the reference processes' request time went, from their cProfile files in ``folder``: the functions
    by their own time, and ours (kernelarena's) by their time with callees; the processes summed."""
    files, run = sorted(folder.glob("reference-*.prof")), stamp()
    lines = [f"# Reference processes' profile: {label} ({run.machine}, {run.date})", ""]
    if not files:
        return "\n".join(lines + ["No profile was written (no reference process answered a request?).", ""])
    stats = pstats.Stats(str(files[0]), stream=io.StringIO())
    for path in files[1:]:
        stats.add(str(path))
    lines += [f"{len(files)} processes, {stats.total_tt:.1f} s of requests profiled in all.", ""]
    for title, key, only_ours in (("By own time", "tottime", False), ("Ours, with callees", "cumulative", True)):
        lines += [f"## {title}", "", "| function | calls | own s | with callees s |", "|---|---|---|---|"]
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][2 if key == "tottime" else 3])
        shown = 0
        for (file, line, name), (_, calls, own, cumulative, _) in rows:
            if only_ours and "kernelarena" not in file:
                continue
            lines.append(f"| `{Path(file).name}:{line} {name}` | {calls} | {own:.2f} | {cumulative:.2f} |")
            shown += 1
            if shown == top:
                break
        lines += [""]
    return "\n".join(lines)


def by_label(rows: list) -> list:
    """The runs grouped by label, in the order the labels first ran: (label, its runs)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row["label"], []).append(row)
    return list(groups.items())


def median_wall(runs: list) -> float:
    return statistics.median(row["wall_s"] for row in runs)


def report(args, only: list, warm: list, rows: list, left: list) -> None:
    """Print (and with --out write) the runs so far: ``warm`` the warm-up's, ``rows`` the baseline's, the isolated
    ones' and the variants', round after round; ``left`` the labels of the runs not made yet. With more than one
    round, a label's wall time is the median of its rounds."""
    run = stamp()
    groups = by_label(rows)
    rounds = max((len(runs) for _, runs in groups), default=1)
    lines = [f"# `kernelarena run` wall time, isolation vs baseline ({run.machine}, {run.date})", "",
             f"Command: `python3 -m benchmarks.isolation_walltime --baseline {args.baseline}"
             + (f" --smallest {args.smallest}" if args.smallest else "") + "".join(f" {f}" for f in only)
             + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
             + ("`; example dataset, build cache warmed by an earlier step." if args.no_warm_up else
                "`; example dataset, build cache warmed by a `--smallest 1` run first."), "",
             "| run | wall s | traces | closing line |", "|---|---|---|---|"]
    for row in warm + rows:
        lines.append(f"| {row['label']} | {row['wall_s']:.1f} | {row['traces']} | {row['summary']} |")
    lines += [""]
    base = median_wall(groups[0][1]) if groups else None
    ratio = median_wall(groups[1][1]) / base if len(groups) > 1 else None
    of = " (medians of the rounds)" if rounds > 1 else ""
    if ratio is not None:
        lines += [f"Isolated / baseline{of}: **{ratio:.2f}x** (target: within 1.3x)."]
        if rounds > 1:
            each = [f"{runs[1]['wall_s'] / runs[0]['wall_s']:.2f}x" for runs in zip(groups[0][1], groups[1][1])]
            lines += [f"Round by round: {', '.join(each)}."]
    lines += [f"{label} / baseline{of}: {median_wall(runs) / base:.2f}x." for label, runs in groups[2:]]
    isolated = [row for _, runs in groups[1:] for row in runs]
    if len(isolated) > 1:
        lines += ["", "Run to run, the same pairs (PASSED in both):"]
        lines += [spread_line(row["label"] + (f" (round {i + 1})" if rounds > 1 else ""), isolated[0]["latencies"],
                              row["latencies"])
                  for label, runs in groups[1:] for i, row in enumerate(runs) if row is not isolated[0]]
    if left:
        lines += ["", "Not run yet (this file is written after each run): " + "; ".join(left) + "."]
    lines += [""]
    lines += [f"- {row['label']}: {row['spent']}" for row in warm + rows]
    locks = [row for row in warm + rows if row.get("lock")]
    if locks:
        lines += ["", "Device lock, sampled from /proc/locks (free: the device idle for the run):"]
        lines += [f"- {row['label']}: {lock_summary(row['lock'])}" for row in locks]
    print("\n".join(lines), flush=True)
    if args.out is not None:
        smallest = str(args.smallest or "all") + "".join(f" {name}" for name in args.definition)
        table = [{"smallest": smallest, "run": row["label"], "wall s": f"{row['wall_s']:.1f}",
                  "traces": row["traces"], "vs baseline": f"{row['wall_s'] / base:.2f}x" if base else "-"}
                 for row in warm]
        table += [{"smallest": smallest, "run": label, "wall s": f"{median_wall(runs):.1f}",
                   "traces": runs[-1]["traces"], "vs baseline": f"{median_wall(runs) / base:.2f}x"}
                  for label, runs in groups]
        path = publish("isolation_walltime", args.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS,
                       rows=table, run=run)
        (args.out / "isolation_walltime_latest.json").write_text(json.dumps(
            {"machine": run.machine, "date": run.date, "ratio": ratio, "runs": warm + rows}, indent=1))
        print(f"wrote {path} and {args.out / 'isolation_walltime_latest.md'}", flush=True)


if __name__ == "__main__":
    main()
