"""The dataset's RMSNorm solution records: shape of the JSON, self-contained sources, entry points."""

import ast
import json
import re

import pytest

from kernelarena.kernels.rmsnorm.solutions import DEFINITIONS, solution_records

RECORDS = solution_records()


def test_five_solutions_per_definition():
    for definition in DEFINITIONS:
        languages = sorted(r["spec"]["language"] + str(r["spec"]["binding"])
                           for r in RECORDS if r["definition"] == definition)
        assert languages == ["cudatorch", "cudatvm-ffi", "pythonNone", "tilelangNone", "tritonNone"]
    assert len({r["name"] for r in RECORDS}) == len(RECORDS)
    json.dumps(RECORDS)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["name"])
def test_record_is_self_contained(record):
    assert set(record) == {"name", "definition", "author", "description", "spec", "sources"}
    spec = record["spec"]
    assert spec["destination_passing_style"] is True
    entry_file, symbol = spec["entry_point"].split("::")
    paths = [s["path"] for s in record["sources"]]
    assert entry_file in paths and symbol == "run"
    for source in record["sources"]:
        assert not source["path"].startswith("/") and ".." not in source["path"].split("/")
        assert "kernelarena." not in source["content"].replace("kernelarena's", "")
        assert not re.search(r"^\s*(from|import)\s+kernelarena", source["content"], re.M)
        includes = re.findall(r'#include "([^"]+)"', source["content"])
        assert set(includes) <= set(paths)  # local headers travel with the solution
    if entry_file.endswith(".py"):
        tree = ast.parse(record["sources"][0]["content"])
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= {"__future__", "functools", "dataclasses", "torch", "triton", "tilelang", "tvm",
                            "flashinfer"}
        assert re.search(r"^run = run_(rmsnorm|fused_add_rmsnorm)$", record["sources"][0]["content"], re.M)
    else:
        entry = next(s["content"] for s in record["sources"] if s["path"] == entry_file)
        assert "PYBIND11_MODULE" in entry or "TVM_FFI_DLL_EXPORT_TYPED_FUNC(run" in entry


def test_records_validate_as_flashinfer_bench_solutions():
    data = pytest.importorskip("flashinfer_bench.data")
    for record in RECORDS:
        data.Solution.model_validate(record)
