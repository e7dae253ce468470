"""A dataset for a model's shapes, derived from one whose definitions have other constants (e.g. the example
dataset's hidden 4096 / 32 x 8 heads -> a tiny CPU model's), and the routing config that picks named solutions.

Definitions are copied with their constant axes and names changed; solutions whose sources do not depend on
the constants (Python, Triton) are copied under the new definition. Workloads and traces are not copied:
they measured the other shapes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional

from ..apply import ApplyConfig, RoutingPolicy
from ..schema import Definition, Solution
from ..store import TraceSet

_CONSTANTS = {"hidden_size": "H", "num_qo_heads": "Hq", "num_kv_heads": "Hkv", "head_dim": "D", "page_size": "P"}
_NAMES = (("fused_add_rmsnorm_h", "fused_add_rmsnorm_h{H}"), ("rmsnorm_h", "rmsnorm_h{H}"),
          ("gqa_paged_decode_h", "gqa_paged_decode_h{Hq}_kv{Hkv}_d{D}_ps{P}"),
          ("gqa_paged_prefill_causal_h", "gqa_paged_prefill_causal_h{Hq}_kv{Hkv}_d{D}_ps{P}"))


def definition_name(source_name: str, shapes: Mapping[str, int]) -> Optional[str]:
    """The FlashInfer-Trace name of ``source_name``'s operator at ``shapes`` (keys H, Hq, Hkv, D, P), or None
    for an operator the serving loop does not route (gemm, sampling, ...: the dataset holds a whole decode
    step, the loop patches norms and attention only)."""
    for prefix, pattern in _NAMES:
        if source_name.startswith(prefix):
            return pattern.format(**shapes)
    return None


def derive_dataset(source: TraceSet, out: Path, shapes: Mapping[str, int],
                   solutions: Iterable[str] = ()) -> Dict[str, str]:
    """Write at ``out`` the definitions of ``source`` (one per FlashInfer-Trace name) re-made for ``shapes``,
    and the named ``solutions`` of ``source`` re-targeted to them. Returns source definition -> new name."""
    out.mkdir(parents=True, exist_ok=True)
    target = TraceSet(out)
    renamed: Dict[str, str] = {}
    for name, definition in sorted(source.definitions.items()):
        new_name = definition_name(name, shapes)
        if new_name is None or new_name in renamed.values():
            continue
        record = definition.model_dump(mode="json")
        record["name"] = new_name
        for axis, symbol in _CONSTANTS.items():
            if axis in record["axes"] and record["axes"][axis]["type"] == "const":
                record["axes"][axis]["value"] = shapes[symbol]
        record["description"] = re.sub(r"hidden \d+", f"hidden {shapes['H']}", record.get("description", ""))
        target.add_definition(Definition.model_validate(record))
        renamed[name] = new_name
    for solution_name in solutions:
        solution = source.solutions[solution_name]
        if solution.definition not in renamed:
            continue
        record = solution.model_dump(mode="json")
        record["definition"] = renamed[solution.definition]
        record["name"] = solution_name.replace(solution.definition, renamed[solution.definition])
        target.add_solution(Solution.model_validate(record))
    return renamed


def named_routing(choices: Mapping[str, str], base: ApplyConfig = ApplyConfig()) -> ApplyConfig:
    """An ApplyConfig that sends every call of each definition in ``choices`` (definition -> solution) to
    that solution, whatever traces say (the unseen-key policy "solution" for keys no trace covers)."""
    overrides = dict(base.overrides)
    for definition, solution in choices.items():
        overrides[definition] = RoutingPolicy(unseen="solution", unseen_solution=solution)
    return base.with_options(overrides=overrides)
