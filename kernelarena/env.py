"""Every environment variable kernelarena reads, with its meaning and default, and one accessor each.

The rest of the package asks this module instead of reading ``os.environ``, so this file is the complete list
(tests/test_env.py fails on a read elsewhere, and checks docs/settings.md against ``SETTINGS``). Accessors read
the environment at each call; the few callers that must decide once per process (a kernel switch read at import,
apply's first call) say so where they call. This module imports nothing of ours: every floor may use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple


@dataclass(frozen=True)
class Setting:
    """One environment variable: its ``name``, what it does (``meaning``) and what holds when it is unset."""

    name: str
    meaning: str
    default: str


CACHE_DIR = "KERNELARENA_CACHE_DIR"
APPLY = "KERNELARENA_APPLY"
APPLY_WARMUP = "KERNELARENA_APPLY_WARMUP"
TRACE = "KERNELARENA_TRACE"
TRACE_POLICY = "KERNELARENA_TRACE_POLICY"
NATIVE_PLAN = "KERNELARENA_NATIVE_PLAN"
SMALL_DECODE = "KERNELARENA_SMALL_DECODE"
HOPPER_PREFILL = "KERNELARENA_HOPPER_PREFILL"
INTEGRATIONS = "KERNELARENA_INTEGRATIONS"
DEVICE_LOCK = "KERNELARENA_DEVICE_LOCK"
EXCLUSIVE_COMPARISONS = "KERNELARENA_EXCLUSIVE_COMPARISONS"
HOST_PAGES_FIRST = "KERNELARENA_HOST_PAGES_FIRST"
PROFILE_DIR = "KERNELARENA_PROFILE_DIR"
TRITON_INTERPRET = "TRITON_INTERPRET"
XDG_CACHE_HOME = "XDG_CACHE_HOME"
CUDA_HOME = "CUDA_HOME"
CUDA_PATH = "CUDA_PATH"
CXX = "CXX"
RAY_ADDRESS = "RAY_ADDRESS"

SETTINGS: Tuple[Setting, ...] = (
    Setting(CACHE_DIR, "Root folder of the build cache (compiled solutions, our kernels' extensions).",
            "`$XDG_CACHE_HOME/kernelarena`, else `~/.cache/kernelarena`"),
    Setting(APPLY, "Dataset folder: the first apply call of the process enables apply from it.", "unset: apply off"),
    Setting(APPLY_WARMUP, "`1`: with KERNELARENA_APPLY, build every solution the table uses at that first call.",
            "unset: build each solution at its first use"),
    Setting(TRACE, "Dataset folder: the first apply call of the process starts tracing workloads into it.",
            "unset: tracing off"),
    Setting(TRACE_POLICY, "With KERNELARENA_TRACE: which calls are recorded (`first_n`, `distinct_shapes`, "
            "`sampled`).", "`first_n`"),
    Setting(INTEGRATIONS, "Comma-separated integrations (e.g. `flashinfer`) that `import kernelarena` installs.",
            "unset: none"),
    Setting(NATIVE_PLAN, "`0`: the attention planner runs in numpy instead of the compiled C planner. Read once, "
            "at import.", "`1` (C planner when it builds)"),
    Setting(SMALL_DECODE, "`0`: the small-batch decode attention kernel is never used. Read once, at import.",
            "`1` (used where it is faster)"),
    Setting(HOPPER_PREFILL, "Which prefill kernel an sm90 GPU (H100/H200) runs. Unset or `auto`: our TileLang "
            "Hopper kernel (`kernels/attention/prefill_tilelang.py`, FA3's schedule on persistent blocks) for every "
            "prefill plan it serves (TileLang imports; head size 64, 128 or 256; NHD pages of 16 tokens or more, or "
            "ragged K/V; no window, soft-cap or kv_chunk_size; not in CUDA-graph mode), the portable Triton kernel "
            "for the rest. `1`: as auto, and the Triton Hopper kernel (`prefill_hopper.py`) where TileLang does "
            "not import or serve the head size. `0`: the portable kernel only. A shape's first call compiles the "
            "TileLang kernel (10-30 s) unless TileLang's cache has it. Read once, at import; any other value is an "
            "error.", "`auto`"),
    Setting(DEVICE_LOCK, "`0`: in `kernelarena run` on a GPU, worker start-ups and timed loops do not take turns "
            "on the device (`bench/quiet.py`); for comparing the two.", "`1` (they take turns)"),
    Setting(EXCLUSIVE_COMPARISONS, "`1`: in `kernelarena run` on a GPU, a judging process's comparisons on the "
            "device hold the device lock exclusively (alone on the GPU, not time-sliced with the other lanes' work) "
            "instead of shared; for comparing the two.", "unset: shared"),
    Setting(HOST_PAGES_FIRST, "`0`: in `kernelarena run` on a GPU, a solution's process copies its outputs to the "
            "host into fresh memory under the device lock, instead of touching the host pages first without the lock "
            "(`bench/evaluate.py`); for comparing the two.", "`1` (pages first)"),
    Setting(PROFILE_DIR, "Folder: in `kernelarena run`, each reference process (judging or timing) profiles its "
            "requests with cProfile into `reference-<pid>.prof` there (a diagnostic of where a run's time goes; "
            "benchmarks/isolation_walltime.py --profile reads them).", "unset: no profile"),
    Setting(TRITON_INTERPRET, "Triton's own switch; `1` runs Triton kernels on the CPU. We read it to know which "
            "backends can run, and set it for CPU builds and workers.", "unset: compiled for the GPU"),
    Setting(XDG_CACHE_HOME, "The user's cache folder (XDG base directories); parent of our default cache.",
            "`~/.cache`"),
    Setting(CUDA_HOME, "CUDA toolkit folder; nvcc is looked for in its `bin/` first.", "unset"),
    Setting(CUDA_PATH, "CUDA toolkit folder, read after CUDA_HOME (the name some installers set).", "unset"),
    Setting(CXX, "The host C++ compiler (the one torch and tvm-ffi use too).", "`c++`"),
    Setting(RAY_ADDRESS, "Ray's own variable: the cluster `run --engine ray` joins when `--address` is not given.",
            "unset: start a local Ray instance"),
)
"""All variables, in the order docs/settings.md lists them."""


def environment() -> Mapping[str, str]:
    """The process environment, for apply's startup hooks: they read the variables above from the mapping they
    are given, so that a test can pass its own."""
    return os.environ


def _get(name: str) -> Optional[str]:
    """The variable's value, None when unset or empty."""
    return os.environ.get(name) or None


def _switch_on(name: str) -> bool:
    """A default-on switch: anything but ``0`` keeps it on."""
    return os.environ.get(name, "1") != "0"


def cache_root() -> Path:
    """The build cache root: ``$KERNELARENA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kernelarena``, else
    ``~/.cache/kernelarena``."""
    explicit = _get(CACHE_DIR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = _get(XDG_CACHE_HOME)
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kernelarena"


def apply_dataset() -> Optional[str]:
    """``$KERNELARENA_APPLY``: the dataset folder apply enables itself from, or None."""
    return _get(APPLY)


def apply_warmup() -> bool:
    """``$KERNELARENA_APPLY_WARMUP == "1"``: build every solution of the table when apply enables itself."""
    return os.environ.get(APPLY_WARMUP) == "1"


def trace_dataset() -> Optional[str]:
    """``$KERNELARENA_TRACE``: the dataset folder tracing records into, or None."""
    return _get(TRACE)


def trace_policy() -> Optional[str]:
    """``$KERNELARENA_TRACE_POLICY``: the tracing policy's name, or None for the default."""
    return _get(TRACE_POLICY)


def native_plan_enabled() -> bool:
    """False when ``KERNELARENA_NATIVE_PLAN=0``: plan attention in numpy."""
    return _switch_on(NATIVE_PLAN)


def small_decode_enabled() -> bool:
    """False when ``KERNELARENA_SMALL_DECODE=0``: never use the small-batch decode kernel."""
    return _switch_on(SMALL_DECODE)


HOPPER_PREFILL_MODES = {"0": "off", "1": "on", "auto": "auto"}


def hopper_prefill_mode() -> str:
    """``$KERNELARENA_HOPPER_PREFILL`` as "auto" (unset, empty or ``auto``), "on" (``1``) or "off" (``0``).

    Raises ValueError naming the variable for any other value."""
    value = os.environ.get(HOPPER_PREFILL) or "auto"
    if value not in HOPPER_PREFILL_MODES:
        raise ValueError(f"{HOPPER_PREFILL}={value!r}: expected 0 (the portable prefill kernel only), 1 (the Hopper "
                         "kernels wherever they apply) or auto (the default: the TileLang kernel where it serves)")
    return HOPPER_PREFILL_MODES[value]


def device_lock_enabled() -> bool:
    """False when ``KERNELARENA_DEVICE_LOCK=0``: worker start-ups and timed loops on a GPU do not take turns."""
    return _switch_on(DEVICE_LOCK)


def exclusive_comparisons() -> bool:
    """True when ``KERNELARENA_EXCLUSIVE_COMPARISONS=1``: comparisons on the device hold the device lock
    exclusively."""
    return os.environ.get(EXCLUSIVE_COMPARISONS) == "1"


def host_pages_first() -> bool:
    """False when ``KERNELARENA_HOST_PAGES_FIRST=0``: a solution's process faults in the host pages of its outputs'
    copies under the device lock, as before."""
    return os.environ.get(HOST_PAGES_FIRST) != "0"


def profile_dir() -> Optional[Path]:
    """``KERNELARENA_PROFILE_DIR`` as a path: where reference processes write their request profiles; None when
    unset or empty."""
    value = os.environ.get(PROFILE_DIR, "")
    return Path(value) if value else None


def triton_interpreted() -> bool:
    """True when ``TRITON_INTERPRET=1``: Triton kernels run on the CPU."""
    return os.environ.get(TRITON_INTERPRET) == "1"


def cuda_homes() -> Tuple[str, ...]:
    """CUDA toolkit folders named by ``$CUDA_HOME`` then ``$CUDA_PATH`` (those that are set)."""
    return tuple(home for home in (_get(CUDA_HOME), _get(CUDA_PATH)) if home)


def cxx() -> str:
    """The host C++ compiler: ``$CXX`` or ``c++``."""
    return _get(CXX) or "c++"


def ray_address() -> Optional[str]:
    """``$RAY_ADDRESS``: the Ray cluster to join, or None (start a local one)."""
    return _get(RAY_ADDRESS)


def settings_table() -> str:
    """The variables as a markdown table (name, meaning, default): what docs/settings.md holds."""
    lines = ["| Variable | Meaning | Default |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {s.meaning} | {s.default} |" for s in SETTINGS]
    return "\n".join(lines) + "\n"

