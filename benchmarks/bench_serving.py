"""Decode tokens/s of the serving loop, FlashInfer alone vs FlashInfer patched by kernelarena, eager and with
the decode step in a CUDA graph; and the part of a step the integration changes (attention + norms) alone.

    source benchmarks/gpu_env.sh && python benchmarks/bench_serving.py [--layers 2] [--steps 64] [--norm cuda]

The sweep: Llama-3-8B layer shapes (hidden 4096, 32 query / 8 KV heads of 128, MLP 14336, bf16, random
weights, vocab 32000), ``--layers`` layers; batch 1, 16, 64; every request's context KV 1024 or 4096 tokens
(the cache filled with random K/V, no prefill), then ``--steps`` greedy decode steps timed (after warm-up
steps that include the graph capture). A step = plan the batch (host), forward, argmax. Patched mode routes
through kernelarena's FlashInfer integration with the example dataset, each definition sent to our solution
(attention: the Triton paged kernels, planned once per step; norms: ``--norm`` backend). Modes are run
one after another per case. "attention+norm" times a step that makes only those calls (3 norm calls and one
attention run per layer, plan once per step) with the same shapes.

Before the sweep, one short generation (batch 4, prompts of ~100 tokens, prefill + 8 decode steps) in every
mode checks that the greedy tokens agree with FlashInfer alone (first divergence and its logit margin are
shown when they do not). Writes the tables to $OUT/serving_<date>.md (or --out) and prints them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelarena.serving import (  # noqa: E402
    LlamaConfig,
    LlamaModel,
    PagedKVCache,
    first_divergence,
    gpu_choices,
    random_prompts,
    random_weights,
    run_mode,
)
from kernelarena.serving.engine import DecodeStep  # noqa: E402
from kernelarena.serving.modes import PAGE_SIZE, make_backends, mode_context  # noqa: E402

EXAMPLE_DATASET = ROOT / "examples" / "dataset"
BATCHES = (1, 16, 64)
KV_LENS = (1024, 4096)
MODES = ("flashinfer", "patched", "flashinfer_graph", "patched_graph")


def filled_cache(config: LlamaConfig, batch: int, kv_len: int, extra: int) -> PagedKVCache:
    cache = PagedKVCache(config.num_layers, batch, kv_len + extra, config.num_kv_heads, config.head_dim,
                         page_size=PAGE_SIZE, dtype=torch.bfloat16, device="cuda")
    for tensor in cache.k + cache.v:
        tensor.normal_()
    return cache


def routes_now(attention) -> str:
    """Which solution each definition ran in the last step (patched modes), for the table."""
    from kernelarena.apply import current_runtime
    from kernelarena.integrations.flashinfer import routed_solution

    runtime = current_runtime()
    if runtime is None:
        return "FlashInfer"
    norms = {s for d in ("rmsnorm_h4096", "fused_add_rmsnorm_h4096") for s in runtime.routes(d).values()}
    norm = ",".join(sorted(s or "fallback" for s in norms)) or "none seen"
    return f"attn {routed_solution(attention.decode) or 'FlashInfer (fallback)'}; norms {norm}"


def time_decode(mode: str, model: LlamaModel, batch: int, kv_len: int, steps: int, warmup: int):
    """(tokens/s, routes) for ``steps`` decode steps at context ``kv_len``."""
    config = model.config
    cache = filled_cache(config, batch, kv_len, warmup + steps + 1)
    attention, norms = make_backends(mode, config, cache)
    decoder = DecodeStep(model, attention, norms, batch, torch.device("cuda"), mode.endswith("_graph"))
    lens = [kv_len] * batch
    tokens = torch.randint(0, config.vocab_size, (batch,), device="cuda")

    def step(tokens):
        positions = torch.tensor(lens, dtype=torch.int64)
        for r in range(batch):
            lens[r] += 1
        attention.plan(cache.table(lens, [1] * batch))
        return decoder(tokens, positions.to("cuda", non_blocking=True)).argmax(-1)

    for _ in range(warmup):
        tokens = step(tokens)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        tokens = step(tokens)
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start), routes_now(attention)


def time_attention_and_norms(mode: str, config: LlamaConfig, batch: int, kv_len: int, steps: int, warmup: int):
    """Microseconds per step of only the integration's calls: plan once, then per layer the norm calls and
    the attention run, as a decode step makes them."""
    cache = filled_cache(config, batch, kv_len, warmup + steps + 1)
    attention, norms = make_backends(mode, config, cache)
    x = torch.randn(batch, config.hidden_size, dtype=torch.bfloat16, device="cuda")
    residual = torch.randn_like(x)
    weight = torch.ones(config.hidden_size, dtype=torch.bfloat16, device="cuda")
    q = torch.randn(batch, config.num_heads, config.head_dim, dtype=torch.bfloat16, device="cuda")
    eps = config.rms_norm_eps
    lens = [kv_len] * batch

    def calls():
        for layer in range(config.num_layers):
            norms.fused_add_rmsnorm(x, residual, weight, eps)
            attention.attend(layer, q)
            norms.fused_add_rmsnorm(x, residual, weight, eps)
        norms.rmsnorm(x, weight, eps)

    def plan():
        for r in range(batch):
            lens[r] += 1
        attention.plan(cache.table(lens, [1] * batch))

    graph = None
    for i in range(warmup):
        plan()
        calls()
    if mode.endswith("_graph"):
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            calls()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        plan()
        graph.replay() if graph is not None else calls()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e6


def agreement(model: LlamaModel) -> list:
    prompts = random_prompts(4, 100, model.config.vocab_size)
    results = {mode: run_mode(mode, model, prompts, 8, dataset=EXAMPLE_DATASET, choices=CHOICES) for mode in MODES}
    rows = []
    for mode in MODES:
        divergence = first_divergence(results["flashinfer"], results[mode], tolerance=0.05)
        if divergence is None:
            rows.append(f"| {mode} | all 32 tokens agree | "
                        f"{(results[mode].logits - results['flashinfer'].logits).abs().max().item():.4f} |")
        else:
            step, request, margin = divergence
            gap = (results[mode].logits[:step] - results["flashinfer"].logits[:step]).abs()
            before = gap.max().item() if step else 0
            rows.append(f"| {mode} | first differs at step {step}, request {request} (FlashInfer's top-2 margin "
                        f"{margin:.4f}) | {before:.4f} |")
    return rows


def main() -> int:
    global CHOICES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--norm", default="cuda", help="our RMSNorm solution's backend: cuda, cuda_tvm_ffi, "
                        "triton, tilelang (a solution of the example dataset)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "benchmarks" / "results")))
    options = parser.parse_args()
    import flashinfer

    CHOICES = gpu_choices(options.norm)
    config = LlamaConfig.llama3_8b_layers(num_layers=options.layers)
    model = LlamaModel(config, random_weights(config, device="cuda"))
    date = datetime.date.today().isoformat()
    header = (f"Serving loop, {torch.cuda.get_device_name()}, {date}, torch {torch.__version__}, FlashInfer "
              f"{flashinfer.__version__}; Llama-3-8B layer shapes x {config.num_layers} layers, bf16, vocab "
              f"{config.vocab_size}; {options.steps} decode steps timed after {options.warmup}; norms: "
              f"{options.norm}; script benchmarks/bench_serving.py")
    lines = [header, "", "Greedy agreement with FlashInfer alone (batch 4, ~100-token prompts, 8 new tokens):", "",
             "| mode | tokens | max logit difference before any divergence |", "|---|---|---|", *agreement(model)]
    print("\n".join(lines), flush=True)
    decode_rows, part_rows, routes = [], [], set()
    for batch in BATCHES:
        for kv_len in KV_LENS:
            rates, part = {}, {}
            for mode in MODES:
                with mode_context(mode, EXAMPLE_DATASET, CHOICES):
                    rates[mode], route = time_decode(mode, model, batch, kv_len, options.steps, options.warmup)
                    part[mode] = time_attention_and_norms(mode, config, batch, kv_len, options.steps,
                                                          options.warmup)
                routes.add(f"{mode}: {route}")
                torch.cuda.empty_cache()
            decode_rows.append(
                f"| {batch} | {kv_len} | {rates['flashinfer']:.0f} | {rates['patched']:.0f} | "
                f"{rates['patched'] / rates['flashinfer']:.3f} | {rates['flashinfer_graph']:.0f} | "
                f"{rates['patched_graph']:.0f} | {rates['patched_graph'] / rates['flashinfer_graph']:.3f} |")
            part_rows.append(
                f"| {batch} | {kv_len} | {part['flashinfer']:.1f} | {part['patched']:.1f} | "
                f"{part['flashinfer'] / part['patched']:.3f} | {part['flashinfer_graph']:.1f} | "
                f"{part['patched_graph']:.1f} | {part['flashinfer_graph'] / part['patched_graph']:.3f} |")
            print(decode_rows[-1], part_rows[-1], sep="\n", flush=True)
    header = "| batch | KV | FlashInfer eager | patched eager | speedup | FlashInfer graph | patched graph | speedup |"
    lines += ["", "Decode tokens/s (higher is better; speedup = patched / FlashInfer):", "",
              header,
              "|---|---|---|---|---|---|---|---|", *decode_rows,
              "", "Attention + norms alone, us per step (plan + calls; lower is better; "
              "speedup = FlashInfer / patched):",
              "", header,
              "|---|---|---|---|---|---|---|---|", *part_rows, "", "Routes seen in the last step of each mode:", "",
              *sorted(f"- {r}" for r in routes)]
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"serving_{date}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(part_rows) - 25:]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
