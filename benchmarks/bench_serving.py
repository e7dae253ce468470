"""Decode tokens/s of the serving loop, FlashInfer alone vs FlashInfer patched by kernelarena, eager and with
the decode step in a CUDA graph; and the part of a step the integration changes (attention + norms) alone.

    source benchmarks/gpu_env.sh && python3 -m benchmarks.bench_serving [--layers 2] [--steps 64] [--norm cuda] \
        [--out DIR]

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
shown when they do not). Prints the tables; with ``--out`` (default $OUT) writes them to serving_latest.md there and
upserts this run's rows into the results table serving.md (benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import add_out_argument, publish, stamp
from kernelarena.serving import (
    LlamaConfig,
    LlamaModel,
    PagedKVCache,
    first_divergence,
    gpu_choices,
    random_prompts,
    random_weights,
    run_mode,
)
from kernelarena.serving.engine import DecodeStep
from kernelarena.serving.modes import PAGE_SIZE, make_backends, mode_context

ROOT = Path(__file__).resolve().parents[1]

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


KEY = ["layers", "norm", "batch", "KV"]
COLUMNS = [*KEY, "FI eager tok/s", "patched eager tok/s", "eager x", "FI graph tok/s", "patched graph tok/s",
           "graph x", "attn+norm eager x", "attn+norm graph x"]
TITLE = """# Serving loop: decode tokens/s, FlashInfer alone vs patched by kernelarena

`python3 -m benchmarks.bench_serving --out $OUT` (Llama-3-8B layer shapes, `layers` layers, bf16, random weights;
every request's context `KV` tokens; greedy decode steps timed after warm-up): decode tokens/s of FlashInfer alone
(FI) and patched (our solutions routed through the FlashInfer integration, norms from the `norm` backend), eager and
with the step in a CUDA graph; "x" = patched / FI (> 1: patched faster); "attn+norm x" the same ratio for a step of
only the attention and norm calls (FI us / patched us). One row per machine and case, the latest run of each; the
latest run's full output (greedy agreement, us per step, routes) is `serving_latest.md` beside this file."""


def main() -> int:
    global CHOICES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--norm", default="cuda", help="our RMSNorm solution's backend: cuda, cuda_tvm_ffi, "
                        "triton, tilelang (a solution of the example dataset)")
    add_out_argument(parser)
    options = parser.parse_args()
    import flashinfer

    CHOICES = gpu_choices(options.norm)
    config = LlamaConfig.llama3_8b_layers(num_layers=options.layers)
    model = LlamaModel(config, random_weights(config, device="cuda"))
    run = stamp("cuda")
    header = (f"Serving loop, {run.machine}, {run.date}, torch {torch.__version__}, FlashInfer "
              f"{flashinfer.__version__}; Llama-3-8B layer shapes x {config.num_layers} layers, bf16, vocab "
              f"{config.vocab_size}; {options.steps} decode steps timed after {options.warmup}; norms: "
              f"{options.norm}; script benchmarks/bench_serving.py")
    lines = [header, "", "Greedy agreement with FlashInfer alone (batch 4, ~100-token prompts, 8 new tokens):", "",
             "| mode | tokens | max logit difference before any divergence |", "|---|---|---|", *agreement(model)]
    print("\n".join(lines), flush=True)
    decode_rows, part_rows, table_rows, routes = [], [], [], set()
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
            table_rows.append({
                "layers": config.num_layers, "norm": options.norm, "batch": batch, "KV": kv_len,
                "FI eager tok/s": f"{rates['flashinfer']:.0f}", "patched eager tok/s": f"{rates['patched']:.0f}",
                "eager x": f"{rates['patched'] / rates['flashinfer']:.3f}",
                "FI graph tok/s": f"{rates['flashinfer_graph']:.0f}",
                "patched graph tok/s": f"{rates['patched_graph']:.0f}",
                "graph x": f"{rates['patched_graph'] / rates['flashinfer_graph']:.3f}",
                "attn+norm eager x": f"{part['flashinfer'] / part['patched']:.3f}",
                "attn+norm graph x": f"{part['flashinfer_graph'] / part['patched_graph']:.3f}"})
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
    print("\n".join(lines[-len(part_rows) - 25:]))
    if options.out is not None:
        path = publish("serving", options.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS, rows=table_rows,
                       run=run)
        print(f"wrote {path} and {options.out / 'serving_latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
