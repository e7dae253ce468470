"""Decode tokens/s of the serving loop, FlashInfer alone vs FlashInfer patched by kernelarena, eager and with
the decode step in a CUDA graph; the part of a step the integration changes (attention + norms) alone; and the
host time of an eager step.

    source benchmarks/gpu_env.sh && python3 -m benchmarks.bench_serving [--layers 2] [--rounds 7] [--steps 48] \
        [--budget 80] [--quick] [--norm cuda] [--out DIR]

The sweep: Llama-3-8B layer shapes (hidden 4096, 32 query / 8 KV heads of 128, MLP 14336, bf16, random
weights, vocab 32000), ``--layers`` layers; batch 1, 16, 64; every request's context KV 1024 or 4096 tokens
(the cache filled with random K/V, no prefill). A step = plan the batch (host), forward, argmax. Patched modes
route through kernelarena's FlashInfer integration with the example dataset, each definition sent to our
solution (attention: the Triton paged kernels, planned once per step; norms: ``--norm`` backend).
"attention+norm" times a step that makes only those calls (3 norm calls and one attention run per layer, plan
once per step) with the same shapes.

Per case, every mode's loops are built and warmed (``--warmup`` steps, the graph captured) first; then rounds:
each runs the four modes in turn (the order rotated by one each round, the integration installed only around
a patched mode's turn), and a turn is ``--warmup-per-round`` untimed steps, ``--steps`` timed steps of the decode
loop and of the attention+norm loop, and (eager modes) ``--host-steps`` steps timed one by one from an idle GPU
for the host time. A cell is the median across rounds with half the range as the spread; a speedup is the median
of the per-round ratios (the modes of one round ran back to back, so drift between rounds cancels). A case stops
adding rounds after the third once its share of ``--budget`` seconds would be passed; ``--quick`` is a smoke run
(3 rounds of 16 steps, two cases). Nothing is pinned (clocks, CPU affinity): the numbers are what a user's
process gets. The output says how long the timed rounds took and how many rounds each case ran.

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
from statistics import median
from typing import Sequence, Tuple

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
from kernelarena.store import TraceSet

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


class Loop:
    """One mode's steps over a case's cache (shared by the modes: K/V values do not change the timing), with its
    own request lengths, advanced by every step. ``step()`` plans the batch (host) and enqueues the work."""

    def __init__(self, mode: str, config: LlamaConfig, cache: PagedKVCache, batch: int, kv_len: int):
        self.mode, self.batch = mode, batch
        self.attention, self.norms = make_backends(mode, config, cache)
        self.cache, self.lens = cache, [kv_len] * batch

    def plan(self) -> None:
        for r in range(self.batch):
            self.lens[r] += 1
        self.attention.plan(self.cache.table(self.lens, [1] * self.batch))

    def seconds(self, steps: int) -> float:
        """Wall seconds of ``steps`` steps, the GPU idle before and drained after."""
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    def host_us(self, steps: int) -> float:
        """Median host time of one step (plan + enqueue) started with the GPU idle, so that no wait for the GPU
        is counted: what the host spends per step when the GPU keeps up."""
        times = []
        for _ in range(steps):
            torch.cuda.synchronize()
            start = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - start)
        torch.cuda.synchronize()
        return median(times) * 1e6


class DecodeLoop(Loop):
    """A decode step of the model: plan, forward (eager or a CUDA graph replay), argmax."""

    def __init__(self, mode, model: LlamaModel, cache, batch, kv_len, warmup: int):
        super().__init__(mode, model.config, cache, batch, kv_len)
        self.decoder = DecodeStep(model, self.attention, self.norms, batch, torch.device("cuda"),
                                  mode.endswith("_graph"))
        self.tokens = torch.randint(0, model.config.vocab_size, (batch,), device="cuda")
        self.seconds(warmup)  # includes the graph capture

    def step(self) -> None:
        positions = torch.tensor(self.lens, dtype=torch.int64)
        self.plan()
        self.tokens = self.decoder(self.tokens, positions.to("cuda", non_blocking=True)).argmax(-1)


class AttentionNormsLoop(Loop):
    """A step of only the integration's calls: plan once, then per layer the norm calls and the attention run, as
    a decode step makes them (the calls captured in a CUDA graph in the graph modes)."""

    def __init__(self, mode, config: LlamaConfig, cache, batch, kv_len, warmup: int):
        super().__init__(mode, config, cache, batch, kv_len)
        self.config = config
        self.x = torch.randn(batch, config.hidden_size, dtype=torch.bfloat16, device="cuda")
        self.residual = torch.randn_like(self.x)
        self.weight = torch.ones(config.hidden_size, dtype=torch.bfloat16, device="cuda")
        self.q = torch.randn(batch, config.num_heads, config.head_dim, dtype=torch.bfloat16, device="cuda")
        self.graph = None
        self.seconds(warmup)
        if mode.endswith("_graph"):
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.calls()
            self.graph = graph

    def calls(self) -> None:
        norms, eps = self.norms, self.config.rms_norm_eps
        for layer in range(self.config.num_layers):
            norms.fused_add_rmsnorm(self.x, self.residual, self.weight, eps)
            self.attention.attend(layer, self.q)
            norms.fused_add_rmsnorm(self.x, self.residual, self.weight, eps)
        norms.rmsnorm(self.x, self.weight, eps)

    def step(self) -> None:
        self.plan()
        if self.graph is not None:
            self.graph.replay()
        else:
            self.calls()


def spread(values: Sequence[float]) -> float:
    """Half the range across rounds, relative to the median."""
    return (max(values) - min(values)) / 2 / median(values)


def time_case(model: LlamaModel, batch: int, kv_len: int, options, seconds_left: float) -> dict:
    """Per mode, per round: decode tokens/s, attention+norms us per step, and (eager modes) host us per step of
    each. Rounds run the four modes in turn, the order rotated each round, the integration installed only around
    the patched modes' turns; rounds stop early (after the third) when the next would pass ``seconds_left``."""
    config = model.config
    # Each loop advances its own lengths by every step it makes.
    per_round = options.warmup_per_round + options.steps + options.host_steps
    cache = filled_cache(config, batch, kv_len, options.warmup + options.rounds * per_round + 1)
    decode, part, routes = {}, {}, {}
    for mode in MODES:
        with mode_context(mode, TRACESET, CHOICES):
            decode[mode] = DecodeLoop(mode, model, cache, batch, kv_len, options.warmup)
            part[mode] = AttentionNormsLoop(mode, config, cache, batch, kv_len, options.warmup)
            # Here, not in the rounds: a graph replay makes no norm call, so a round's runtime sees none.
            routes[mode] = routes_now(decode[mode].attention)
    samples = {name: {mode: [] for mode in MODES} for name in ("tok/s", "part us", "host us", "part host us")}
    start = time.perf_counter()
    for r in range(options.rounds):
        round_start = time.perf_counter()
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            with mode_context(mode, TRACESET, CHOICES):
                loops = (decode[mode], part[mode])
                for loop in loops:
                    loop.seconds(options.warmup_per_round)
                samples["tok/s"][mode].append(batch * options.steps / decode[mode].seconds(options.steps))
                samples["part us"][mode].append(part[mode].seconds(options.steps) / options.steps * 1e6)
                if not mode.endswith("_graph"):
                    samples["host us"][mode].append(decode[mode].host_us(options.host_steps))
                    samples["part host us"][mode].append(part[mode].host_us(options.host_steps))
        elapsed, last = time.perf_counter() - start, time.perf_counter() - round_start
        if r >= 2 and elapsed + last > seconds_left:
            break
    del decode, part, cache
    torch.cuda.empty_cache()
    return {"samples": samples, "routes": routes, "seconds": time.perf_counter() - start}


def ratio(samples: dict, name: str, over: str, under: str) -> Tuple[float, float]:
    """Median and spread of the per-round ratio over/under (modes of one round ran back to back)."""
    ratios = [a / b for a, b in zip(samples[name][over], samples[name][under])]
    return median(ratios), spread(ratios)


def cell(values: Sequence[float], digits: int = 0) -> str:
    return f"{median(values):.{digits}f} ±{100 * spread(values):.0f}%"


def agreement(model: LlamaModel) -> list:
    prompts = random_prompts(4, 100, model.config.vocab_size)
    results = {mode: run_mode(mode, model, prompts, 8, dataset=TRACESET, choices=CHOICES) for mode in MODES}
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
           "graph x", "attn+norm eager x", "attn+norm graph x", "FI eager host us", "patched eager host us",
           "attn+norm FI host us", "attn+norm patched host us", "rounds"]
TITLE = """# Serving loop: decode tokens/s, FlashInfer alone vs patched by kernelarena

`python3 -m benchmarks.bench_serving --out $OUT` (Llama-3-8B layer shapes, `layers` layers, bf16, random weights;
every request's context `KV` tokens): decode tokens/s of FlashInfer alone (FI) and patched (our solutions routed
through the FlashInfer integration, norms from the `norm` backend), eager and with the step in a CUDA graph, each
the median over `rounds` rounds that run the four modes in turn (order rotated per round); "x" = patched / FI
(> 1: patched faster), the median of the per-round ratios; "attn+norm x" the same ratio for a step of only the
attention and norm calls (FI us / patched us); "host us" the median host time of one eager step (plan + enqueue)
started with the GPU idle. One row per machine and case, the latest run of each; the latest run's full output
(greedy agreement, spreads across rounds, us per step, routes) is `serving_latest.md` beside this file."""


def main() -> int:
    global CHOICES, TRACESET
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the four modes per case (at least 3)")
    parser.add_argument("--steps", type=int, default=48, help="decode steps timed per mode per round")
    parser.add_argument("--host-steps", type=int, default=8, help="steps per round timed one by one for host us")
    parser.add_argument("--warmup", type=int, default=8, help="steps before the first round (graph capture)")
    parser.add_argument("--warmup-per-round", type=int, default=2, help="untimed steps at each mode's turn")
    parser.add_argument("--budget", type=float, default=80.0,
                        help="seconds for the timed rounds of the whole sweep; a case stops adding rounds (after "
                             "three) when its share would be passed")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 rounds of 16 steps, 4 host steps, batch 1 and 64 at KV 1024")
    parser.add_argument("--norm", default="cuda", help="our RMSNorm solution's backend: cuda, cuda_tvm_ffi, "
                        "triton, tilelang (a solution of the example dataset)")
    add_out_argument(parser)
    options = parser.parse_args()
    cases = [(b, kv) for b in BATCHES for kv in KV_LENS]
    if options.quick:
        options.rounds, options.steps, options.host_steps, options.warmup = 3, 16, 4, 4
        cases = [(1, 1024), (64, 1024)]
    if options.rounds < 3:
        parser.error("--rounds must be at least 3 (the spread across rounds needs them)")
    import flashinfer

    CHOICES = gpu_choices(options.norm)
    TRACESET = TraceSet.load(EXAMPLE_DATASET)  # loaded once: the patched modes' turns install it every round
    config = LlamaConfig.llama3_8b_layers(num_layers=options.layers)
    model = LlamaModel(config, random_weights(config, device="cuda"))
    run = stamp("cuda")
    header = (f"Serving loop, {run.machine}, {run.date}, torch {torch.__version__}, FlashInfer "
              f"{flashinfer.__version__}; Llama-3-8B layer shapes x {config.num_layers} layers, bf16, vocab "
              f"{config.vocab_size}; per case up to {options.rounds} rounds of the four modes (order rotated), each "
              f"{options.steps} decode steps timed after {options.warmup_per_round} (and {options.warmup} before the "
              f"first round), {options.host_steps} steps timed one by one for host us; norms: {options.norm}; "
              f"script benchmarks/bench_serving.py{' --quick' if options.quick else ''}")
    lines = [header, "", "Greedy agreement with FlashInfer alone (batch 4, ~100-token prompts, 8 new tokens):", "",
             "| mode | tokens | max logit difference before any divergence |", "|---|---|---|", *agreement(model)]
    print("\n".join(lines), flush=True)
    decode_rows, part_rows, table_rows, routes = [], [], [], set()
    sweep_start = time.perf_counter()
    for i, (batch, kv_len) in enumerate(cases):
        share = (options.budget - (time.perf_counter() - sweep_start)) / (len(cases) - i)
        result = time_case(model, batch, kv_len, options, share)
        s, n = result["samples"], len(result["samples"]["tok/s"]["flashinfer"])
        routes.update(f"{mode}: {route}" for mode, route in result["routes"].items())
        eager, eager_spread = ratio(s, "tok/s", "patched", "flashinfer")
        graph, graph_spread = ratio(s, "tok/s", "patched_graph", "flashinfer_graph")
        part_eager, part_eager_spread = ratio(s, "part us", "flashinfer", "patched")
        part_graph, part_graph_spread = ratio(s, "part us", "flashinfer_graph", "patched_graph")
        decode_rows.append(
            f"| {batch} | {kv_len} | {cell(s['tok/s']['flashinfer'])} | {cell(s['tok/s']['patched'])} | "
            f"{eager:.3f} ±{100 * eager_spread:.0f}% | {cell(s['tok/s']['flashinfer_graph'])} | "
            f"{cell(s['tok/s']['patched_graph'])} | {graph:.3f} ±{100 * graph_spread:.0f}% | "
            f"{cell(s['host us']['flashinfer'])} | {cell(s['host us']['patched'])} | {n} |")
        part_rows.append(
            f"| {batch} | {kv_len} | {cell(s['part us']['flashinfer'], 1)} | {cell(s['part us']['patched'], 1)} | "
            f"{part_eager:.3f} ±{100 * part_eager_spread:.0f}% | {cell(s['part us']['flashinfer_graph'], 1)} | "
            f"{cell(s['part us']['patched_graph'], 1)} | {part_graph:.3f} ±{100 * part_graph_spread:.0f}% | "
            f"{cell(s['part host us']['flashinfer'])} | {cell(s['part host us']['patched'])} | {n} |")
        table_rows.append({
            "layers": config.num_layers, "norm": options.norm, "batch": batch, "KV": kv_len,
            "FI eager tok/s": f"{median(s['tok/s']['flashinfer']):.0f}",
            "patched eager tok/s": f"{median(s['tok/s']['patched']):.0f}", "eager x": f"{eager:.3f}",
            "FI graph tok/s": f"{median(s['tok/s']['flashinfer_graph']):.0f}",
            "patched graph tok/s": f"{median(s['tok/s']['patched_graph']):.0f}", "graph x": f"{graph:.3f}",
            "attn+norm eager x": f"{part_eager:.3f}", "attn+norm graph x": f"{part_graph:.3f}",
            "FI eager host us": f"{median(s['host us']['flashinfer']):.0f}",
            "patched eager host us": f"{median(s['host us']['patched']):.0f}",
            "attn+norm FI host us": f"{median(s['part host us']['flashinfer']):.0f}",
            "attn+norm patched host us": f"{median(s['part host us']['patched']):.0f}", "rounds": n})
        print(decode_rows[-1], part_rows[-1], f"({n} rounds, {result['seconds']:.1f} s)", sep="\n", flush=True)
    header = ("| batch | KV | FlashInfer eager | patched eager | speedup | FlashInfer graph | patched graph | "
              "speedup | FlashInfer eager host us | patched eager host us | rounds |")
    rule = "|---|---|---|---|---|---|---|---|---|---|---|"
    lines += ["", f"Timed rounds took {time.perf_counter() - sweep_start:.0f} s. Each cell: median across rounds "
              "±half its range; a speedup is the median of the per-round ratios.", "",
              "Decode tokens/s (higher is better; speedup = patched / FlashInfer; host us: one eager step, plan + "
              "enqueue, started with the GPU idle):", "", header, rule, *decode_rows,
              "", "Attention + norms alone, us per step (plan + calls; lower is better; "
              "speedup = FlashInfer / patched):", "", header, rule, *part_rows, "",
              "Routes seen after each mode's warm-up:", "", *sorted(f"- {r}" for r in routes)]
    print("\n".join(lines[-len(part_rows) - len(decode_rows) - 20:]))
    if options.out is not None:
        path = publish("serving", options.out, "\n".join(lines), TITLE, key=KEY, columns=COLUMNS, rows=table_rows,
                       run=run)
        print(f"wrote {path} and {options.out / 'serving_latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
