"""kernelarena.integrations.flashinfer with the real flashinfer package on CPU: patching, routing, fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from kernelarena.errors import UnsupportedError
from kernelarena.integrations import flashinfer as ka_flashinfer
from kernelarena.kernels import attention as ours
from kernelarena.kernels.attention.reference import batch_attention_reference, ragged_attention_reference
from kernelarena.schema import Definition, Solution
from kernelarena.serving.dataset import named_routing
from kernelarena.store import TraceSet
from tests.conftest import ROOT

from .conftest import RMSNORM, flashinfer, routing

WRAPPERS = ("BatchDecodeWithPagedKVCacheWrapper", "BatchPrefillWithPagedKVCacheWrapper",
            "BatchPrefillWithRaggedKVCacheWrapper")


def _originals():
    found = {name: flashinfer.norm.__dict__[name] for name in ka_flashinfer.NORMS}
    found.update({f"top.{name}": flashinfer.__dict__[name] for name in ("rmsnorm", "fused_add_rmsnorm")})
    for cls in WRAPPERS:
        for method in ("__init__", "plan", "run"):
            found[f"{cls}.{method}"] = getattr(flashinfer, cls).__dict__[method]
    return found


def _rmsnorm(x, w, eps=1e-6):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


def test_install_patches_every_api_and_uninstall_restores_the_originals_exactly(tiny_dataset):
    before = _originals()
    ka_flashinfer.install(tiny_dataset)
    patched = _originals()
    assert all(patched[name] is not before[name] for name in before)
    assert flashinfer.rmsnorm is flashinfer.norm.rmsnorm  # the top-level re-export is patched too
    ka_flashinfer.install(tiny_dataset)  # idempotent: no second layer of patches
    assert _originals() == patched
    ka_flashinfer.uninstall()
    ka_flashinfer.uninstall()
    assert _originals() == before
    assert not ka_flashinfer.is_installed()


def test_rmsnorm_and_fused_add_rmsnorm_route_to_the_chosen_solution(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(rmsnorm="rmsnorm_h64_pytorch",
                                                       fused="fused_add_rmsnorm_h64_pytorch"))
    x, w = torch.randn(3, 64, dtype=torch.bfloat16), torch.randn(64, dtype=torch.bfloat16)
    torch.testing.assert_close(flashinfer.norm.rmsnorm(x, w), _rmsnorm(x, w))
    out = torch.empty_like(x)
    assert flashinfer.rmsnorm(x, w, out=out) is out
    torch.testing.assert_close(out, _rmsnorm(x, w))
    residual = torch.randn(3, 64, dtype=torch.bfloat16)
    hidden, res = x.clone(), residual.clone()
    assert flashinfer.norm.fused_add_rmsnorm(hidden, res, w) is None  # in place, as FlashInfer's
    total = (x.float() + residual.float()).to(torch.bfloat16)
    torch.testing.assert_close(res, total)
    torch.testing.assert_close(hidden, _rmsnorm(total, w), atol=2e-2, rtol=2e-2)


def test_calls_the_definitions_cannot_express_run_flashinfers_original_and_log_the_reason(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(rmsnorm="rmsnorm_h64_pytorch"))
    x, w = torch.randn(3, 64, dtype=torch.bfloat16), torch.randn(64, dtype=torch.bfloat16)
    # FlashInfer's own kernel cannot run on a CPU: reaching it raises FlashInfer's error, not ours.
    with pytest.raises(AssertionError, match="CUDA"):
        flashinfer.norm.rmsnorm(x, w, eps=1e-5)
    with pytest.raises(AssertionError, match="CUDA"):
        flashinfer.norm.rmsnorm(x.view(3, 1, 64), w)
    reasons = {reason for api, reason in ka_flashinfer.logged_reasons() if api == "flashinfer.norm.rmsnorm"}
    assert any("eps=1e-05" in r for r in reasons)


def _decode_batch(lengths=(23, 16, 1), num_pages=8):
    table = ours.build_page_table(list(lengths), 16, num_pages=num_pages, shuffle=True,
                                  generator=torch.Generator().manual_seed(0))
    k = torch.randn(num_pages, 16, 2, 64, dtype=torch.bfloat16)
    return table, k, torch.randn_like(k), torch.randn(len(lengths), 4, 64, dtype=torch.bfloat16)


@pytest.mark.parametrize("solution", ["gqa_paged_decode_h4_kv2_d64_ps16_pytorch",
                                      "kernelarena_triton_gqa_paged_decode_h4_kv2_d64_ps16"])
def test_decode_wrapper_routes_plans_once_and_runs_many_times(tiny_dataset, solution, monkeypatch):
    ka_flashinfer.install(tiny_dataset, config=routing(decode=solution))
    plans = []
    plan = ours.BatchDecodeWithPagedKVCacheWrapper.plan
    monkeypatch.setattr(ours.BatchDecodeWithPagedKVCacheWrapper, "plan",
                        lambda self, *a, **k: (plans.append(1), plan(self, *a, **k))[1])
    table, k, v, q = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                 q_data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(wrapper) == solution
    expected, expected_lse = batch_attention_reference(q, k, v, torch.arange(4), table.kv_indptr,
                                                       table.kv_indices, table.kv_last_page_len)
    for _ in range(2):
        out, lse = wrapper.run(q, (k, v), return_lse=True)
        torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(lse.float(), expected_lse.float(), atol=2e-2, rtol=2e-2)
    out = torch.empty_like(q)
    assert wrapper.run(q, torch.stack([k, v], dim=1), out=out) is out  # one [pages, 2, P, H, D] tensor
    torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)
    assert len(plans) == (1 if solution.startswith("kernelarena_triton") else 0)


def test_paged_prefill_wrapper_routes_causal_prefill(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(prefill="gqa_paged_prefill_causal_h4_kv2_d64_ps16_pytorch"))
    table, k, v, _ = _decode_batch((20, 5))
    qo_indptr = torch.tensor([0, 4, 9], dtype=torch.int32)
    q = torch.randn(9, 4, 64, dtype=torch.bfloat16)
    wrapper = flashinfer.BatchPrefillWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    wrapper.plan(qo_indptr, table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16, causal=True,
                 q_data_type=torch.bfloat16)
    expected, _ = batch_attention_reference(q, k, v, qo_indptr, table.kv_indptr, table.kv_indices,
                                            table.kv_last_page_len, causal=True)
    torch.testing.assert_close(wrapper.run(q, (k, v)).float(), expected.float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("option, reason", [
    ({"logits_soft_cap": 30.0}, "logits_soft_cap=30.0"), ({"window_left": 8}, "window_left=8"),
    ({"q_data_type": torch.float16}, "q_data_type=torch.float16"), ({"made_up": 1}, "unknown argument made_up"),
    ({"pos_encoding_mode": "ROPE_LLAMA"}, "pos_encoding_mode='ROPE_LLAMA'")])
def test_unsupported_plan_arguments_go_to_flashinfer_with_the_reason_logged(tiny_dataset, option, reason):
    ka_flashinfer.install(tiny_dataset, config=routing(decode="gqa_paged_decode_h4_kv2_d64_ps16_pytorch"))
    table, *_ = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    options = {"q_data_type": torch.bfloat16, **option}
    # FlashInfer could not set itself up on the CPU, so its own path raises here, chained to its error.
    with pytest.raises(UnsupportedError, match="FlashInfer's own kernels are needed"):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16, **options)
    assert ka_flashinfer.routed_solution(wrapper) is None
    assert any(api == "BatchDecodeWithPagedKVCacheWrapper" and logged.startswith(reason)
               for api, logged in ka_flashinfer.logged_reasons())


def test_non_causal_prefill_and_hnd_layout_stay_on_flashinfer(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(prefill="gqa_paged_prefill_causal_h4_kv2_d64_ps16_pytorch"))
    table, *_ = _decode_batch((20, 5))
    qo_indptr = torch.tensor([0, 4, 9], dtype=torch.int32)
    for layout, causal in (("NHD", False), ("HND", True)):
        wrapper = flashinfer.BatchPrefillWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), layout)
        with pytest.raises(UnsupportedError):
            wrapper.plan(qo_indptr, table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                         causal=causal, q_data_type=torch.bfloat16)
    reasons = {r for api, r in ka_flashinfer.logged_reasons() if api == "BatchPrefillWithPagedKVCacheWrapper"}
    assert any("causal=False" in r for r in reasons) and any("kv_layout=HND" in r for r in reasons)


def test_flashinfer_wrapper_solution_and_disabled_apply_keep_flashinfers_original(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(
        decode="flashinfer_wrapper_gqa_paged_decode_h4_kv2_d64_ps16"))
    table, *_ = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    with pytest.raises(UnsupportedError):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                     q_data_type=torch.bfloat16)
    assert any("flashinfer_wrapper_gqa_paged_decode_h4_kv2_d64_ps16 is the fallback" in r
               for _, r in ka_flashinfer.logged_reasons())


def test_a_route_chosen_from_one_table_is_dropped_when_apply_changes(tiny_dataset):
    from kernelarena.apply import disable_apply, enable_apply

    ka_flashinfer.install(tiny_dataset, config=routing(decode="gqa_paged_decode_h4_kv2_d64_ps16_pytorch"))
    table, k, v, q = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                 q_data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(wrapper) is not None
    disable_apply(enable_apply(tiny_dataset))
    assert ka_flashinfer.routed_solution(wrapper) is None


def _ragged_dataset(root):
    """A ragged causal prefill definition (4/2 heads of 64) and a PyTorch solution for it."""
    dataset = TraceSet(root)
    name = "gqa_ragged_prefill_causal_h4_kv2_d64"
    dataset.add_definition(Definition.model_validate({
        "name": name, "op_type": "gqa_ragged",
        "axes": {"total_q": {"type": "var"}, "total_kv": {"type": "var"}, "len_indptr": {"type": "var"},
                 "num_qo_heads": {"type": "const", "value": 4}, "num_kv_heads": {"type": "const", "value": 2},
                 "head_dim": {"type": "const", "value": 64}},
        "inputs": {"q": {"shape": ["total_q", "num_qo_heads", "head_dim"], "dtype": "bfloat16"},
                   "k": {"shape": ["total_kv", "num_kv_heads", "head_dim"], "dtype": "bfloat16"},
                   "v": {"shape": ["total_kv", "num_kv_heads", "head_dim"], "dtype": "bfloat16"},
                   "qo_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
                   "kv_indptr": {"shape": ["len_indptr"], "dtype": "int32"},
                   "sm_scale": {"shape": None, "dtype": "float32"}},
        "outputs": {"output": {"shape": ["total_q", "num_qo_heads", "head_dim"], "dtype": "bfloat16"},
                    "lse": {"shape": ["total_q", "num_qo_heads"], "dtype": "float32"}},
        "reference": "def run(q, k, v, qo_indptr, kv_indptr, sm_scale):\n    raise NotImplementedError\n"}))
    source = (ROOT / "kernelarena/kernels/attention/reference.py").read_text()
    source += ("\n\ndef run(q, k, v, qo_indptr, kv_indptr, sm_scale):\n"
               "    out, lse = ragged_attention_reference(q, k, v, qo_indptr, kv_indptr, causal=True,"
               " sm_scale=float(sm_scale))\n    return out.to(q.dtype), lse.float()\n")
    dataset.add_solution(Solution.model_validate({
        "name": f"{name}_pytorch", "definition": name, "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": False},
        "sources": [{"path": "main.py", "content": source}]}))
    return name


def test_ragged_prefill_wrapper_routes(tmp_path):
    name = _ragged_dataset(tmp_path)
    ka_flashinfer.install(tmp_path, config=named_routing({name: f"{name}_pytorch"}))
    qo_indptr, kv_indptr = torch.tensor([0, 3, 5], dtype=torch.int32), torch.tensor([0, 7, 9], dtype=torch.int32)
    q = torch.randn(5, 4, 64, dtype=torch.bfloat16)
    k, v = torch.randn(9, 2, 64, dtype=torch.bfloat16), torch.randn(9, 2, 64, dtype=torch.bfloat16)
    wrapper = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    wrapper.plan(qo_indptr, kv_indptr, 4, 2, 64, causal=True, q_data_type=torch.bfloat16, sm_scale=0.1)
    assert ka_flashinfer.routed_solution(wrapper) == f"{name}_pytorch"
    expected, _ = ragged_attention_reference(q, k, v, qo_indptr, kv_indptr, causal=True, sm_scale=0.1)
    torch.testing.assert_close(wrapper.run(q, k, v).float(), expected.float(), atol=2e-2, rtol=2e-2)


@pytest.mark.slow
def test_environment_installs_the_integration_when_kernelarena_is_imported(tiny_dataset, tmp_path):
    import shutil

    from kernelarena.bench.environment import local_hardware
    from kernelarena.schema import Environment, Evaluation, Performance, Status, Trace, Workload

    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, dataset)
    # A PASSED trace at 2 rows, so the default routing policy (no config possible from the environment)
    # picks the PyTorch solution for (2, 64) calls.
    TraceSet.load(dataset).add_traces([Trace(
        definition=RMSNORM, solution="rmsnorm_h64_pytorch",
        workload=Workload(uuid="w2", axes={"batch_size": 2}, inputs={"hidden_states": {"type": "random"},
                                                                     "weight": {"type": "random"}}),
        evaluation=Evaluation(status=Status.PASSED, environment=Environment(hardware=local_hardware()),
                              timestamp="2026-12-02T00:00:00Z", correctness={"max_absolute_error": 0.0},
                              performance=Performance(latency_ms=1.0, reference_latency_ms=1.0, speedup_factor=1.0)))])
    code = ("import kernelarena, flashinfer, torch\n"
            "from kernelarena.integrations import flashinfer as ka\n"
            "x = torch.randn(2, 64, dtype=torch.bfloat16); w = torch.ones(64, dtype=torch.bfloat16)\n"
            "y = flashinfer.norm.rmsnorm(x, w)\n"
            "ref = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).bfloat16()\n"
            "print(ka.is_installed(), flashinfer.norm.rmsnorm.__module__, bool((y == ref).all()))\n")
    env = {**os.environ, "KERNELARENA_INTEGRATIONS": "flashinfer", "KERNELARENA_APPLY": str(dataset),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "kernelarena.integrations.flashinfer.norms", "True"], \
        done.stderr[-2000:]


@pytest.mark.slow
def test_startup_file_switches_over_a_process_that_never_imports_kernelarena(tmp_path):
    from kernelarena.integrations.startup import remove_startup_file, write_startup_file

    write_startup_file(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KERNELARENA_INTEGRATIONS", None)
    plain = subprocess.run([sys.executable, "-c", "import site, sys; site.addsitedir(sys.argv[1]); "
                            "print('kernelarena' in sys.modules)", str(tmp_path)], env=env, capture_output=True,
                           text=True, timeout=120)
    assert plain.stdout.strip() == "False", plain.stderr[-2000:]  # without the variable: not even imported
    code = ("import site, sys; site.addsitedir(sys.argv[1]); import flashinfer\n"
            "print(flashinfer.norm.rmsnorm.__module__)\n")
    env["KERNELARENA_INTEGRATIONS"] = "flashinfer"
    switched = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True,
                              text=True, timeout=120)
    assert switched.stdout.strip() == "kernelarena.integrations.flashinfer.norms", switched.stderr[-2000:]
    assert remove_startup_file(tmp_path) and not remove_startup_file(tmp_path)


def test_a_one_call_solution_is_refused_for_a_cuda_graph_wrapper(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(decode="gqa_paged_decode_h4_kv2_d64_ps16_pytorch"))
    table, *_ = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD",
                                                            use_cuda_graph=True)
    with pytest.raises(UnsupportedError):
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                     q_data_type=torch.bfloat16)
    assert any("CUDA graph" in r for _, r in ka_flashinfer.logged_reasons())


def test_flashinfers_aliases_and_deprecated_forward_route_only_with_the_planned_settings(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(decode="gqa_paged_decode_h4_kv2_d64_ps16_pytorch"))
    table, k, v, q = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    # begin_forward with the older data_type spelling, as SGLang calls it
    wrapper.begin_forward(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                          data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(wrapper) is not None
    expected, expected_lse = batch_attention_reference(q, k, v, torch.arange(4), table.kv_indptr,
                                                       table.kv_indices, table.kv_last_page_len)
    out, lse = wrapper.run_return_lse(q, (k, v))
    torch.testing.assert_close(lse.float(), expected_lse.float(), atol=2e-2, rtol=2e-2)
    out = wrapper.forward(q, (k, v), sm_scale=1 / 8, logits_soft_cap=0.0)
    torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)
    with pytest.raises(UnsupportedError):  # another scale than planned: FlashInfer's own (absent on a CPU)
        wrapper.forward(q, (k, v), sm_scale=0.5)
    assert ka_flashinfer.routed_solution(wrapper) is None


def test_a_solution_that_calls_flashinfer_norm_reaches_the_original_not_the_route_again(tmp_path, caplog):
    """A dataset's FlashInfer solution calls flashinfer.norm.rmsnorm, which is patched: picking it must mean
    FlashInfer's original (here it raises, FlashInfer cannot run on a CPU), not a loop back into apply."""
    import logging

    from kernelarena.serving.dataset import derive_dataset

    from .conftest import SHAPES

    derive_dataset(TraceSet.load(ROOT / "examples" / "dataset"), tmp_path, SHAPES, ())
    TraceSet.load(tmp_path).add_solution(Solution.model_validate({
        "name": "rmsnorm_h64_via_flashinfer", "definition": RMSNORM, "author": "tests",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run",
                 "destination_passing_style": False, "dependencies": ["flashinfer"]},
        "sources": [{"path": "main.py", "content": "import flashinfer\n\n\ndef run(x, w):\n"
                                                    "    return flashinfer.norm.rmsnorm(x, w, 1e-6)\n"}]}))
    ka_flashinfer.install(tmp_path, config=named_routing({RMSNORM: "rmsnorm_h64_via_flashinfer"}))
    x, w = torch.randn(3, 64, dtype=torch.bfloat16), torch.randn(64, dtype=torch.bfloat16)
    with caplog.at_level(logging.INFO, logger="kernelarena.apply"), pytest.raises(AssertionError, match="CUDA"):
        flashinfer.norm.rmsnorm(x, w)
    assert "RecursionError" not in caplog.text
    from kernelarena.apply import current_runtime

    assert current_runtime().routes(RMSNORM) == {(3,): None}  # the pick was FlashInfer's own: the fallback


def test_a_wrapper_remembers_its_settings_decision_and_decides_again_when_they_change(tiny_dataset):
    ka_flashinfer.install(tiny_dataset, config=routing(decode="gqa_paged_decode_h4_kv2_d64_ps16_pytorch"))
    table, k, v, q = _decode_batch()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(torch.empty(1 << 22, dtype=torch.uint8), "NHD")
    tables = (table.kv_indptr, table.kv_indices, table.kv_last_page_len)
    for lengths in ((23, 16, 1), (24, 17, 2)):  # same settings, a new page table each time
        table, *_ = _decode_batch(lengths)
        wrapper.plan(table.kv_indptr, table.kv_indices, table.kv_last_page_len, 4, 2, 64, 16,
                     q_data_type=torch.bfloat16)
        assert ka_flashinfer.routed_solution(wrapper) == "gqa_paged_decode_h4_kv2_d64_ps16_pytorch"
        expected, _ = batch_attention_reference(q, k, v, torch.arange(4), table.kv_indptr, table.kv_indices,
                                                table.kv_last_page_len)
        torch.testing.assert_close(wrapper.run(q, (k, v)).float(), expected.float(), atol=2e-2, rtol=2e-2)
    # Changed settings are parsed again (a soft cap: FlashInfer's own), and so are the first ones after them.
    with pytest.raises(UnsupportedError, match="FlashInfer's own kernels are needed"):
        wrapper.plan(*tables, 4, 2, 64, 16, q_data_type=torch.bfloat16, logits_soft_cap=30.0)
    assert ka_flashinfer.routed_solution(wrapper) is None
    with pytest.raises(UnsupportedError):  # head_dim 64.0 names no definition, though it equals 64
        wrapper.plan(*tables, 4, 2, 64.0, 16, q_data_type=torch.bfloat16)
    assert any("d64.0" in r for _, r in ka_flashinfer.logged_reasons())
    wrapper.plan(*tables, 4, 2, 64, 16, q_data_type=torch.bfloat16)
    assert ka_flashinfer.routed_solution(wrapper) == "gqa_paged_decode_h4_kv2_d64_ps16_pytorch"
    # A setting passed as a tensor is never remembered (tensors compare element-wise), yet still parsed.
    with pytest.raises(UnsupportedError):
        wrapper.plan(*tables, 4, 2, 64, 16, q_data_type=torch.bfloat16, seq_lens=torch.tensor([23, 16, 1]))
    assert ka_flashinfer.routed_solution(wrapper) is None
