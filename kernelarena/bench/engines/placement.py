"""Where an evaluation may run on a cluster: device slots, and which of them a solution's target_hardware admits.

Pure functions over resource tables, so the matching is testable without a cluster. A slot is one device an
evaluation holds for its whole length: one GPU, or one CPU evaluation slot (a node offers those only when it
is started with the ``kernelarena_cpu`` resource, since a CPU evaluation uses every core it is given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional

from ...schema import Solution

CPU_RESOURCE = "kernelarena_cpu"
"""Custom resource a node offers for CPU evaluations (how many may run on it at once)."""
GPU_RESOURCE = "GPU"
ACCELERATOR_PREFIX = "accelerator_type:"
"""Ray's own per-node resource naming the GPU model (e.g. ``accelerator_type:H200``), detected at node start."""

# target_hardware entries that admit any NVIDIA GPU; any other entry but "cpu" names a GPU model.
_ANY_GPU = {"cuda", "gpu", "nvidia"}


@dataclass(frozen=True)
class SlotKind:
    """A kind of device slot: ``device`` is what the evaluator is bound to ("cpu", "cuda"); ``model`` the GPU
    model as the cluster names it ("H200"), None for the CPU or a GPU of unknown model."""

    device: str
    model: Optional[str] = None

    @property
    def label(self) -> str:
        return self.device if self.model is None else f"{self.device}:{self.model}"

    @property
    def evaluator_device(self) -> str:
        """The device an evaluator on this slot uses: Ray makes the slot's GPU the only one it sees."""
        return "cpu" if self.device == "cpu" else "cuda:0"

    def ray_options(self) -> Dict[str, object]:
        """Actor options that place one evaluator on a slot of this kind (a whole GPU: Ray sets
        CUDA_VISIBLE_DEVICES to it, so the evaluator's device is cuda:0)."""
        if self.device == "cpu":
            return {"num_cpus": 0, "resources": {CPU_RESOURCE: 1}}
        resources = {ACCELERATOR_PREFIX + self.model: 0.001} if self.model else {}
        return {"num_cpus": 0, "num_gpus": 1, "resources": resources}


def slot_kinds(nodes: Iterable[Mapping[str, float]]) -> Dict[SlotKind, int]:
    """Slots per kind over the alive nodes' resource tables (``ray.nodes()[i]["Resources"]``)."""
    kinds: Dict[SlotKind, int] = {}
    for resources in nodes:
        gpus = int(resources.get(GPU_RESOURCE, 0))
        if gpus:
            models = [name[len(ACCELERATOR_PREFIX):] for name in resources if name.startswith(ACCELERATOR_PREFIX)]
            kind = SlotKind("cuda", models[0] if len(models) == 1 else None)
            kinds[kind] = kinds.get(kind, 0) + gpus
        cpus = int(resources.get(CPU_RESOURCE, 0))
        if cpus:
            kinds[SlotKind("cpu")] = kinds.get(SlotKind("cpu"), 0) + cpus
    return kinds


def _model_key(name: str) -> str:
    """"NVIDIA H100 80GB HBM3", "nvidia_h100", "H100" -> "H100..." (upper case, letters and digits only)."""
    return re.sub(r"[^A-Z0-9]", "", name.upper().removeprefix("NVIDIA").lstrip(" _-"))


def admits(solution: Solution, kind: SlotKind) -> bool:
    """Whether the solution's target_hardware admits a slot of ``kind``: "cpu" the CPU; "cuda", "gpu" or
    "nvidia" any GPU; another entry a GPU whose model it names ("H100" admits H100 but not H200)."""
    targets = {t.lower() for t in solution.spec.target_hardware}
    if kind.device == "cpu":
        return "cpu" in targets
    gpu_targets = targets - {"cpu"}
    if gpu_targets & _ANY_GPU:
        return True
    if kind.model is None:
        return False
    model = _model_key(kind.model)
    return any(_model_key(t) == model or _model_key(t).startswith(model) for t in gpu_targets)


def placements(solution: Solution, kinds: Iterable[SlotKind]) -> List[SlotKind]:
    """The slot kinds the solution is evaluated on: the GPU kinds it admits when there are any (a benchmark is
    about GPUs), else the CPU when it admits it; empty when nothing in the cluster fits."""
    admitted = [k for k in kinds if admits(solution, k)]
    gpus = [k for k in admitted if k.device != "cpu"]
    return gpus or admitted


def no_placement_reason(solution: Solution, kinds: Iterable[SlotKind]) -> str:
    """The log of an evaluation that nothing in the cluster can run."""
    offered = ", ".join(sorted(k.label for k in kinds)) or "none"
    return (f"solution {solution.name} cannot run on this Ray cluster: its target_hardware "
            f"{list(solution.spec.target_hardware)} matches none of the cluster's device slots ({offered})")
