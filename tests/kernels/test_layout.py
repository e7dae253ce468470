"""Every operator under kernelarena/kernels/ ships its kernel sources, and follows the one layout."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kernelarena"
SOURCE_SUFFIXES = {".cu", ".cuh", ".c", ".h"}


def test_package_data_covers_every_kernel_source():
    tomllib = pytest.importorskip("tomllib")
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kernelarena"]
    sources = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "kernels").rglob("*")
               if p.suffix in SOURCE_SUFFIXES]
    assert sources
    # setuptools expands each glob relative to the package, "**" across folders, as pathlib's glob does.
    shipped = {p.relative_to(PACKAGE).as_posix() for g in globs for p in PACKAGE.glob(g)}
    missing = [s for s in sources if s not in shipped]
    assert missing == [], f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_rmsnorm_backend_table():
    from kernelarena.kernels.rmsnorm import BACKENDS
    from kernelarena.kernels.rmsnorm.backends import TABLE

    assert BACKENDS == ("auto", *TABLE)
    for name, backend in TABLE.items():
        assert backend.name == name and callable(backend.unavailable) and callable(backend.prepare)
        assert backend.host_cost
    for name in ("reference.py", "triton.py", "tilelang.py", "cuda/rmsnorm.cuh", "backends.py", "solutions.py"):
        assert (PACKAGE / "kernels" / "rmsnorm" / name).is_file(), name


def test_attention_backend_table_chooses_small_decode_only_where_it_serves():
    from kernelarena.kernels.attention import small_decode
    from kernelarena.kernels.attention.backends import TABLE, AttentionProblem, choose

    assert list(TABLE) == ["cuda", "hopper", "triton"] and all(b.host_cost for b in TABLE.values())
    asked = []

    def problem(**changes):
        def kv_rows():
            asked.append(1)
            return changes.pop("rows", 4096 * 8)
        base = dict(decode=True, on_gpu=True, pairs=8, num_sms=132, fixed_config=False, q_dtype=torch.bfloat16,
                    head_dim=128, group=4, kv_rows=kv_rows)
        base.update({k: v for k, v in changes.items() if k != "rows"})
        return AttentionProblem(**base)

    expected = "cuda" if small_decode.enabled else "triton"
    assert choose(problem()) == expected
    assert choose(problem(rows=small_decode.MAX_TOKEN_HEADS + 1)) == "triton"
    asked.clear()
    for changes in ({"decode": False}, {"on_gpu": False}, {"pairs": 132}, {"fixed_config": True},
                    {"head_dim": 96}, {"q_dtype": torch.float32}):
        assert choose(problem(**changes)) == "triton", changes
    assert asked == []  # the K/V row count (a host copy of the page table) only when the rest allows


