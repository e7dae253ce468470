"""Example 05: serving code that calls FlashInfer, before and after kernelarena's FlashInfer integration.

    python examples/05_integration/integration.py

Part 1 deploys a benchmark's result into unchanged FlashInfer calls: two RMSNorm solutions are benchmarked,
then ``kernelarena.integrations.flashinfer.installed(dataset)`` routes ``flashinfer.norm.rmsnorm`` to the
winner, and FlashInfer's original comes back on exit. Part 2 runs the serving loop (kernelarena.serving: a
Llama-architecture model with random weights, paged KV cache, prefill then greedy decode, attention through
FlashInfer's wrappers and norms through flashinfer.norm, as SGLang calls them) before and after.
On a GPU: Llama-3-8B layer shapes, FlashInfer's kernels before. On a CPU, where FlashInfer's kernels cannot
run: a tiny model, PyTorch attention and norms before.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton solution runs interpreted on the CPU

from kernelarena.apply import current_runtime  # noqa: E402
from kernelarena.bench import RunConfig, TimingConfig, run  # noqa: E402
from kernelarena.store import TraceSet  # noqa: E402

EXAMPLE_DATASET = Path(__file__).resolve().parents[1] / "dataset"
DEFINITION = "rmsnorm_h4096"
SOLUTIONS = ["rmsnorm_h4096_pytorch", "rmsnorm_h4096_kernelarena_triton"]
DEVICE = "cuda" if GPU else "cpu"
BATCH = 32 if GPU else 1


def timed(fn):
    """(result, seconds) of one call, the GPU synchronized before and after."""
    if GPU:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if GPU:
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def part1_norm_calls(root: Path, ka_flashinfer, flashinfer) -> None:
    print("== 1. benchmark two RMSNorm solutions (their traces are the routing table)")
    report = run(TraceSet.load(root), RunConfig(correctness_rounds=2, timing=TimingConfig(checked_calls=1)),
                 definitions=[DEFINITION], solutions=SOLUTIONS, smallest=2 if GPU else 1)
    for t in report.traces:
        print(f"  {t.solution} batch_size={t.workload.axes['batch_size']}: {t.evaluation.status.value}")
    x = torch.randn(BATCH, 4096, dtype=torch.bfloat16, device=DEVICE)
    w = torch.randn(4096, dtype=torch.bfloat16, device=DEVICE)
    original = flashinfer.norm.rmsnorm

    print("\n== 2. the engine's call, flashinfer.norm.rmsnorm(x, w, eps=1e-6), with the integration installed")
    with ka_flashinfer.installed(root):
        y = flashinfer.norm.rmsnorm(x, w, eps=1e-6)
        print(f"  patched: {flashinfer.norm.rmsnorm is not original}; batch {BATCH} routed to "
              f"{current_runtime().routes(DEFINITION).get((BATCH,), 'FlashInfer (the fallback)')}")
        expected = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6) * w.float())
        print(f"  max |difference| from a float32 RMSNorm: {float((y.float() - expected).abs().max()):.3g} (bf16)")
    print(f"  uninstalled: FlashInfer's original is back: {flashinfer.norm.rmsnorm is original}")


def part2_serving_loop(tmp: Path) -> None:
    from kernelarena.serving import (LlamaConfig, LlamaModel, derived_choices, first_divergence, gpu_choices,
                                     random_prompts, random_weights, run_mode)

    if GPU:
        config, batch, prompt_len, new_tokens = LlamaConfig.llama3_8b_layers(num_layers=2), 16, 512, 32
        before_mode, dataset, choices = "flashinfer", EXAMPLE_DATASET, gpu_choices()
    else:
        config, batch, prompt_len, new_tokens = LlamaConfig.tiny(), 2, 12, 3
        # The example dataset's CPU-capable norm and attention solutions, re-made for the tiny model's shapes and
        # named for routing (only the two operator families the model calls are copied over).
        source = tmp / "norm_and_attention"
        for kind in ("definitions", "solutions"):
            for op_type in ("rmsnorm", "gqa_paged"):
                shutil.copytree(EXAMPLE_DATASET / kind / op_type, source / kind / op_type)
        before_mode, dataset = "torch", tmp / "tiny_dataset"
        choices = derived_choices(config, source, dataset)
    model = LlamaModel(config, random_weights(config, device=DEVICE))
    prompts = random_prompts(batch, prompt_len, config.vocab_size)
    print(f"\n== 3. the serving loop: {config.num_layers} layers (hidden {config.hidden_size}, "
          f"{config.num_heads}/{config.num_kv_heads} heads of {config.head_dim}), batch {batch}, prompts of "
          f"~{prompt_len} tokens, {new_tokens} greedy tokens")
    run_mode(before_mode, model, prompts, 2)  # warm-up: builds and JIT compiles happen here, not below
    run_mode("patched", model, prompts, 2, dataset=dataset, choices=choices)
    before, before_s = timed(lambda: run_mode(before_mode, model, prompts, new_tokens))
    after, after_s = timed(lambda: run_mode("patched", model, prompts, new_tokens, dataset=dataset,
                                            choices=choices))
    print(f"  before ({before_mode}): {before_s * 1e3:.1f} ms for prefill + {new_tokens} decode steps")
    print(f"  after (patched, routed to {sorted(set(choices.values()))}): {after_s * 1e3:.1f} ms")
    divergence = first_divergence(before, after, tolerance=0.05)
    same = "identical" if divergence is None else f"first differ at step {divergence[0]}, request " \
        f"{divergence[1]}, where the before-run's two best logits were {divergence[2]:.3f} apart"
    print(f"  greedy tokens before vs after: {same}")
    if not GPU:
        print("  (CPU: PyTorch stands in for FlashInfer before; times are not a speed comparison)")


def main(tmp: Path) -> int:
    if importlib.util.find_spec("flashinfer") is None:
        print("skipped: the flashinfer package is not installed (pip install flashinfer-python==0.7.2.post1)")
        return 0
    import flashinfer
    import flashinfer.norm

    from kernelarena.integrations import flashinfer as ka_flashinfer

    root = tmp / "dataset"
    shutil.copytree(EXAMPLE_DATASET, root, ignore=shutil.ignore_patterns(".*.lock", "traces"))
    part1_norm_calls(root, ka_flashinfer, flashinfer)
    part2_serving_loop(tmp)
    print("\nok")
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="kernelarena-example-05-") as tmp:
        sys.exit(main(Path(tmp)))
