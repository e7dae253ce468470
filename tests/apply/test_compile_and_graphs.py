"""apply() under torch.compile (a custom op per site) and under CUDA graph capture.

The CPU test uses dynamo with the eager backend (fullgraph, so a graph break would fail it); the GPU tests
use inductor and CUDA graphs: pytest -m gpu tests/apply/test_compile_and_graphs.py on the GPU machine.
"""

from __future__ import annotations

import pytest
import torch

import kernelarena

from .tiny_dataset import HIDDEN, make_dataset, marking, scale_rows, scale_rows_into, trace


def model(x, w):
    return scale_rows(x, w) * 2


def model_dps(x, w):
    y = torch.empty_like(x)
    scale_rows_into(x, w, y)
    return y + 0


@pytest.fixture
def dataset(tmp_path):
    """value-returning a (+1) at 4 rows, destination-passing d (+7) at 16 rows."""
    root = tmp_path / "ds"
    make_dataset(root, [marking("a", 1), marking("d", 7, dps=True)], [trace("a", 4, 0.1), trace("d", 16, 0.1)])
    return root


def _check_compiled(dataset, device: str, backend: str, mode=None) -> None:
    kernelarena.enable_apply(dataset, warmup=True)
    compiled = torch.compile(model, backend=backend, mode=mode, fullgraph=True)
    compiled_dps = torch.compile(model_dps, backend=backend, mode=mode, fullgraph=True)
    w = torch.ones(HIDDEN, device=device)
    for rows, mark in ((4, 1), (16, 7), (5, 0)):
        x = torch.ones(rows, HIDDEN, device=device)
        assert compiled(x, w)[0, 0].item() == 2 * (1 + mark)
        assert compiled_dps(x, w)[0, 0].item() == 1 + mark


def test_torch_compile_routes_through_the_custom_op_on_cpu(dataset):
    _check_compiled(dataset, "cpu", "eager")


def test_torch_compile_runs_the_fallback_while_apply_is_off():
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert compiled(torch.ones(4, HIDDEN), torch.ones(HIDDEN))[0, 0].item() == 2


@pytest.mark.gpu
def test_torch_compile_inductor_on_gpu(dataset):
    _check_compiled(dataset, "cuda", "inductor")


@pytest.mark.gpu
def test_torch_compile_reduce_overhead_on_gpu(dataset):
    _check_compiled(dataset, "cuda", "inductor", mode="reduce-overhead")


def _capture(fn):
    """Capture ``fn()`` in a CUDA graph after the warm-up on a side stream that capture requires."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


@pytest.mark.gpu
def test_cuda_graph_capture_and_replay_of_routed_calls(dataset):
    kernelarena.enable_apply(dataset, warmup=True)
    w = torch.ones(HIDDEN, device="cuda")
    x4, x16 = torch.ones(4, HIDDEN, device="cuda"), torch.ones(16, HIDDEN, device="cuda")
    y4 = torch.empty(4, HIDDEN, device="cuda")
    graph, (out4, out16, _) = _capture(lambda: (scale_rows(x4, w), scale_rows(x16, w), scale_rows_into(x4, w, y4)))
    x4.fill_(2.0)
    x16.fill_(3.0)
    graph.replay()
    torch.cuda.synchronize()
    assert out4[0, 0].item() == 3.0  # a: 2 * 1 + 1
    assert out16[0, 0].item() == 10.0  # d (destination-passing, outputs allocated in the graph's pool): 3 + 7
    assert y4[0, 0].item() == 3.0  # value-returning a called destination-passing


@pytest.mark.gpu
def test_a_key_first_seen_during_capture_is_resolved_without_a_sync(dataset):
    kernelarena.enable_apply(dataset, warmup=True)
    w = torch.ones(HIDDEN, device="cuda")
    x = torch.ones(4, HIDDEN, device="cuda")
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):  # no warm-up: the key's first call happens inside the capture
        out = scale_rows(x, w)
    x.fill_(5.0)
    graph.replay()
    torch.cuda.synchronize()
    assert out[0, 0].item() == 6.0
