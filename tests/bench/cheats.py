"""A tiny dataset with one honest solution and one of each kind of misbehaviour the harness must catch."""

from __future__ import annotations

from pathlib import Path

from kernelarena.schema import Definition, Solution, Trace, Workload
from kernelarena.store import TraceSet

REFERENCE = """
import torch

def run(x, w):
    return x * w + 1.0
"""

HONEST = """
def run(x, w, y):
    y.copy_(x * w + 1.0)
"""

# name -> (source, destination_passing_style, expected status)
MISBEHAVIOURS = {
    "cached_output": ("""
_cache = []
def run(x, w, y):
    if not _cache:
        _cache.append(x * w + 1.0)
    y.copy_(_cache[0])
""", True, "INCORRECT_NUMERICAL"),
    "cached_by_pointer": ("""
_cache = {}
def run(x, w, y):
    key = (x.data_ptr(), w.data_ptr())
    if key not in _cache:
        _cache[key] = x * w + 1.0
    y.copy_(_cache[key])
""", True, "INCORRECT_NUMERICAL"),
    "partial_write": ("""
def run(x, w, y):
    half = x.shape[0] // 2
    y[:half].copy_(x[:half] * w + 1.0)
""", True, "INCORRECT_NUMERICAL"),
    "late_thread": ("""
import threading, time
def run(x, w, y):
    def later():
        time.sleep(0.05)
        y.copy_(x * w + 1.0)
    threading.Thread(target=later, daemon=True).start()
""", True, "INCORRECT_NUMERICAL"),
    "low_precision": ("""
import torch
def run(x, w, y):
    y.copy_((x.to(torch.float8_e4m3fn).float() * w + 1.0))
""", True, "INCORRECT_NUMERICAL"),
    "overwrites_input": ("""
def run(x, w, y):
    y.copy_(x * w + 1.0)
    x.zero_()
""", True, "INCORRECT_NUMERICAL"),
    "counts_calls": ("""
_calls = [0]
def run(x, w, y):
    _calls[0] += 1
    if _calls[0] <= 3:
        y.copy_(x * w + 1.0)
""", True, "INCORRECT_NUMERICAL"),
    "inspects_stack": ("""
import inspect
def run(x, w, y):
    if any("tim" in f.function for f in inspect.stack()):
        return
    y.copy_(x * w + 1.0)
""", True, "INCORRECT_NUMERICAL"),
    "raises": ("""
def run(x, w, y):
    raise RuntimeError("kernel exploded")
""", True, "RUNTIME_ERROR"),
    "segfaults": ("""
import ctypes
def run(x, w, y):
    ctypes.string_at(0)
""", True, "RUNTIME_ERROR"),
    "hangs": ("""
import time
def run(x, w, y):
    time.sleep(3600)
""", True, "TIMEOUT"),
    "wrong_shape": ("""
def run(x, w):
    return (x * w + 1.0)[:, :3]
""", False, "INCORRECT_SHAPE"),
    "wrong_dtype": ("""
def run(x, w):
    return (x * w + 1.0).double()
""", False, "INCORRECT_DTYPE"),
    "syntax_error": ("""
def run(x, w, y)
    pass
""", True, "COMPILE_ERROR"),
}


def make_dataset(root: Path, rows: int = 33) -> TraceSet:
    ds = TraceSet(root)
    ds.add_definition(Definition.model_validate({
        "name": "scale_add", "op_type": "elementwise",
        "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 64}},
        "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}, "w": {"shape": ["d"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}},
        "reference": REFERENCE}))

    def add(name: str, source: str, dps: bool) -> None:
        ds.add_solution(Solution.model_validate({
            "name": name, "definition": "scale_add", "author": "tests",
            "spec": {"language": "python", "target_hardware": ["cpu", "cuda"], "entry_point": "main.py::run",
                     "destination_passing_style": dps},
            "sources": [{"path": "main.py", "content": source}]}))

    add("honest", HONEST, True)
    for name, (source, dps, _) in MISBEHAVIOURS.items():
        add(name, source, dps)
    ds.add_workloads([Trace(definition="scale_add", workload=Workload(
        uuid="w1", axes={"n": rows}, inputs={"x": {"type": "random"}, "w": {"type": "random"}}))])
    return ds
