"""Hostile solutions: each attacks the harness itself (its reference, comparison, clock, files, neighbours)
rather than just computing wrong. Two honest controls run first and last. Placeholders {dataset} and {workdir}
are filled with the paths under attack."""

from __future__ import annotations

from pathlib import Path

from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

SCALE_ADD = """
import torch

def run(x, w):
    return x * w + 1.0
"""

SILU_MUL = """
import torch

def run(x, y):
    return torch.nn.functional.silu(x) * y
"""

HONEST = """
import torch
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
"""

HONEST_SILU = """
import torch
def run(x, y, out):
    torch.mul(x * torch.sigmoid(x), y, out=out)
"""

# name -> (definition, source, expected status, what it tries)
ATTACKS = {
    # A patch of torch in the solution's process: in a shared process the reference would run 20 ms slower.
    "slows_reference": ("scale_add", """
import time, torch
_real_mul = torch.Tensor.__mul__
def _slow_mul(a, b):
    time.sleep(0.02)
    return _real_mul(a, b)
torch.Tensor.__mul__ = _slow_mul
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "reference slowed by a torch monkeypatch"),
    # Makes the reference compute zeros like itself and every comparison helper agree with anything.
    "wrong_reference": ("scale_add", """
import torch
import kernelarena.bench.correctness as correctness
from kernelarena.bench.correctness import Comparison
from kernelarena.schema import Status
torch.Tensor.__mul__ = lambda a, b: torch.zeros_like(a)
torch.Tensor.__add__ = lambda a, b: a if isinstance(a, torch.Tensor) else b
correctness.compare_outputs = lambda *a, **k: Comparison(Status.PASSED)
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
def run(x, w, y):
    y.zero_()
""", "INCORRECT_NUMERICAL", "reference and comparison helpers patched"),
    # Reads the reference's expected output out of the process's memory instead of computing.
    "steals_reference_output": ("scale_add", """
import gc, torch
def run(x, w, y):
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.shape == y.shape and obj is not y and obj is not x \
                and not torch.isnan(obj).any():
            y.copy_(obj)
            return
    y.zero_()
""", "INCORRECT_NUMERICAL", "reference output read from memory"),
    # Appends a forged PASSED trace (speedup 1000) to the dataset's traces file.
    "forges_trace": ("scale_add", """
import json, pathlib, torch
try:
    for f in pathlib.Path({dataset!r}, "traces").rglob("*.jsonl"):
        line = f.read_text().splitlines()[0]
        forged = json.loads(line)
        forged["solution"] = "forges_trace"
        forged["evaluation"]["performance"]["speedup_factor"] = 1000.0
        with open(f, "a") as out:
            out.write(json.dumps(forged) + "\\n")
except OSError:
    pass
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "forged trace appended to the dataset"),
    # Rewrites every definition: a reference returning zeros and huge tolerances.
    "rewrites_definitions": ("scale_add", """
import json, pathlib, torch
try:
    for f in pathlib.Path({dataset!r}, "definitions").rglob("*.json"):
        d = json.loads(f.read_text())
        d["reference"] = "import torch\\ndef run(*a):\\n    return torch.zeros(1)\\n"
        d["tolerance"] = {{"atol": 1e9, "rtol": 1e9}}
        f.write_text(json.dumps(d))
except OSError:
    pass
def run(x, w, y):
    y.zero_()
""", "INCORRECT_NUMERICAL", "definition files rewritten"),
    # Plants torch.py and numpy.py in its working folder and in the run's working folder.
    "plants_modules": ("scale_add", """
import os, torch
for folder in (os.getcwd(), {workdir!r}):
    for name in ("torch.py", "numpy.py"):
        try:
            with open(os.path.join(folder, name), "w") as f:
                f.write("raise SystemExit('planted module imported')\\n")
        except OSError:
            pass
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "torch.py / numpy.py planted in the working folder"),
    # Patches silu at import: the reference agrees with its wrong answer, and a neighbour in the same process
    # would compute wrong.
    "patches_silu": ("silu_mul", """
import torch
torch.nn.functional.silu = lambda t, inplace=False: torch.zeros_like(t)
def run(x, y, out):
    out.copy_(torch.nn.functional.silu(x) * y)
""", "INCORRECT_NUMERICAL", "silu patched at import (leaks to neighbours)"),
    # Stops every clock in its process (host and CUDA events) at import: the timer bound its clocks before the
    # solution was imported, so the latency is real; a summary timed there would go negative.
    "patches_clock": ("scale_add", """
import time, torch
time.perf_counter = lambda: 1000.0
time.perf_counter_ns = lambda: 1000
time.monotonic = lambda: 1000.0
time.time = lambda: 1000.0
torch.cuda.Event.elapsed_time = lambda self, end: 0.0  # the GPU's clock, as the harness read it
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "clock patched"),
    # Correct, but reports a latency no device can reach.
    "impossibly_fast": ("scale_add", """
import torch
import kernelarena.bench.timing as timing
_summarize = timing.summarize
timing.summarize = lambda samples, *a, **k: _summarize([s * 1e-6 for s in samples], *a, **k)
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "RUNTIME_ERROR", "latency below the speed of light"),
    # Sends the parent a pickle that would create a file when loaded.
    "pickles_to_parent": ("scale_add", """
import gc, multiprocessing.connection, torch
class Payload:
    def __reduce__(self):
        return (open, ({marker!r}, "w"))
_sent = []
def run(x, w, y):
    if not _sent:
        for obj in gc.get_objects():
            if isinstance(obj, multiprocessing.connection.Connection):
                try:
                    obj.send(Payload())
                    _sent.append(obj)
                except Exception:
                    pass
    y.zero_()
""", "RUNTIME_ERROR", "malicious pickle sent to the parent"),
    # Hands the parent a payload "file" that is a link to a file outside its scratch folder (the parent would
    # copy that file to the reference process, or block on a FIFO).
    "payload_is_a_link": ("scale_add", """
import os, torch
import kernelarena.bench.child as child
def hand_over(conn, kind, payload):
    name = f"payload-{kind}.pt"
    if os.path.lexists(name):
        os.unlink(name)
    os.symlink("/etc/passwd", name)
    child.send(conn, {"payload": kind, "file": name})
child.hand_over = hand_over
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "RUNTIME_ERROR", "payload file a link out of its scratch folder"),
    # Hands over a payload file whose pickle runs code when loaded (opens the marker file), in the reference
    # process, which loads payloads with the weights-only unpickler (mapped from the file, not read whole).
    "payload_runs_code": ("scale_add", """
import pickle, torch
import kernelarena.bench.child as child
class Payload:
    def __reduce__(self):
        return (open, ({marker!r}, "w"))
def hand_over(conn, kind, payload):
    name = f"payload-{kind}.pt"
    torch.save({"rounds": Payload(), "timing": Payload()}, name)
    child.send(conn, {"payload": kind, "file": name})
child.hand_over = hand_over
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "RUNTIME_ERROR", "payload file whose pickle runs code in the reference process"),
    # Leaves state in its process for the next solution to find (a module attribute every process has).
    "leaves_state": ("scale_add", """
import torch
torch._kernelarena_answer = "leaked"
def run(x, w, y):
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "state left for the next solution"),
    "reads_state": ("scale_add", """
import torch
def run(x, w, y):
    if getattr(torch, "_kernelarena_answer", None) == "leaked":
        y.zero_()
    else:
        torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "state read from the previous solution"),
    # Passes only where the network is cut: it raises if it can open an internet socket.
    "opens_socket": ("scale_add", """
import socket, torch
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    reachable = True
except OSError:
    reachable = False
def run(x, w, y):
    if reachable:
        raise RuntimeError("an internet socket could be opened")
    torch.addcmul(torch.ones_like(x), x, w.expand_as(x), out=y)
""", "PASSED", "network used"),
}

CONTROLS = {"aaa_honest_first": ("scale_add", HONEST), "zzz_honest_last": ("scale_add", HONEST),
            "aaa_honest_silu_first": ("silu_mul", HONEST_SILU), "zzz_honest_silu_last": ("silu_mul", HONEST_SILU)}


AXES = {"n": {"type": "var"}, "d": {"type": "const", "value": 64}}
SCALE_ADD_DEFINITION = {
    "name": "scale_add", "op_type": "elementwise", "axes": AXES,
    "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}, "w": {"shape": ["d"], "dtype": "float32"}},
    "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}}, "reference": SCALE_ADD}


def make_hostile_dataset(root: Path, workdir: Path, marker: Path, rows: int = 33) -> TraceSet:
    """The two definitions, every attack and the controls, one workload each."""
    ds = TraceSet(root)
    axes = AXES
    ds.add_definition(Definition.model_validate(SCALE_ADD_DEFINITION))
    ds.add_definition(Definition.model_validate({
        "name": "silu_mul", "op_type": "elementwise", "axes": axes,
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}, "y": {"shape": ["n", "d"], "dtype": "float32"}},
        "outputs": {"out": {"shape": ["n", "d"], "dtype": "float32"}}, "reference": SILU_MUL}))
    solutions = {name: (definition, source) for name, (definition, source, _, _) in ATTACKS.items()}
    solutions.update(CONTROLS)
    for name, (definition, source) in solutions.items():
        source = source.replace("{dataset!r}", repr(str(root))).replace("{workdir!r}", repr(str(workdir))) \
            .replace("{marker!r}", repr(str(marker))).replace("{{", "{").replace("}}", "}")
        ds.add_solution(Solution.model_validate({
            "name": name, "definition": definition, "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": source}]}))
    for definition in ("scale_add", "silu_mul"):
        ds.add_workloads([Trace(definition=definition, workload=Workload(
            uuid=f"{definition}_w", axes={"n": rows}, inputs={}))])
    return ds


def honest_dataset(root: Path, workloads: dict) -> TraceSet:
    """A dataset of scale-add definitions, one per name in ``workloads`` (name -> (reference source, rows of each
    of its workloads)), each with the honest solution: for failures of the definition's side."""
    ds = TraceSet(root)
    io = {"inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}, "w": {"shape": ["d"], "dtype": "float32"}},
          "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}}}
    for name, (reference, rows) in workloads.items():
        ds.add_definition(Definition.model_validate({"name": name, "op_type": "elementwise", "axes": AXES,
                                                     "reference": reference, **io}))
        ds.add_solution(Solution.model_validate({
            "name": f"{name}_honest", "definition": name, "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                     "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": HONEST}]}))
        ds.add_workloads([Trace(definition=name, workload=Workload(uuid=f"{name}_w{n}", axes={"n": n}, inputs={}))
                          for n in rows])
    return ds
