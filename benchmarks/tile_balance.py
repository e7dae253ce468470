"""How evenly the TileLang prefill kernel's persistent blocks share a causal batch's tiles, by the two ways they take
them (prefill_tilelang.py): in turn (block b takes tiles b, b + 132, ... from the list's end: ``dynamic=False``) or
from a counter (blocks take the plan's tiles in list order, each the next one as it gets free: the default).

No GPU: the plans are the ones the launcher makes (scheduler.plan_work, never split), and a tile's time is modelled
as its K/V blocks plus a fixed cost for its prologue and output store (``--tile-cost``, in blocks). The counter is
modelled as a greedy hand-out: the block that gets free first takes the next tile. The table gives each way's
busiest block against the average (1.00: perfect balance; the run takes as long as its busiest block).

    python3 -m benchmarks.tile_balance [--blocks 132] [--tile-cost 1.5] [--out DIR]
"""

from __future__ import annotations

import argparse
import heapq
from pathlib import Path

import numpy as np

from benchmarks.bench_attention import RAGGED_CASE
from benchmarks.common import markdown_table
from kernelarena.kernels.attention.scheduler import HEADER, ITEM_FIELDS, plan_work

BLOCK_M = BLOCK_N = 128
HQ, PAGE = 32, 16
# (requests, queries per request, KV per request): the sweep's two cases, then bench_attention's prefill grid.
CASES = ((4, 1024, 4096), (16, 512, 4096)) + tuple(
    (b, q, kv) for b in (1, 4, 16) for q in (512, 2048, 8192) for kv in sorted({q, 4096, 16384}) if kv >= q)
RAGGED = RAGGED_CASE  # bench_attention's ragged row: (queries, keys) of each request
COLUMNS = ("case", "tiles", "waves", "in turn: busiest / mean", "counter: busiest / mean")


def tile_blocks(queries, kv) -> np.ndarray:
    """K/V blocks of each work item of the launcher's causal plan, in list order (a tile is an item and a head), for
    requests of ``queries`` and ``kv`` tokens (sequences, one entry a request)."""
    queries, kv = np.asarray(queries, np.int32), np.asarray(kv, np.int32)
    pages = -(-kv // PAGE)
    items = int((-(-queries // BLOCK_M)).sum())
    out = np.zeros(HEADER + ITEM_FIELDS * items, np.int32)
    summary = plan_work(out, np.concatenate(([0], np.cumsum(queries))).astype(np.int32),
                        np.concatenate(([0], np.cumsum(pages))).astype(np.int32), (kv - 1) % PAGE + 1,
                        page_size=PAGE, group_size=1, num_kv_heads=1, block_m=BLOCK_M, block_n=BLOCK_N, causal=True,
                        window_left=-1, target_ctas=1, min_chunk=BLOCK_N)
    rows = out[HEADER:HEADER + summary.num_entries * ITEM_FIELDS].reshape(-1, ITEM_FIELDS)
    return -(-(rows[:, 6] - rows[:, 5]) // BLOCK_N)


def busiest_over_mean(blocks: np.ndarray, ctas: int, tile_cost: float, dynamic: bool) -> float:
    cost = np.repeat(blocks.astype(float), HQ) + tile_cost  # heads fastest, as the kernel takes them
    if dynamic:
        free = [(0.0, b) for b in range(ctas)]
        for c in cost:
            t, b = heapq.heappop(free)
            heapq.heappush(free, (t + c, b))
        busiest = max(t for t, _ in free)
    else:
        busiest = max(cost[::-1][b::ctas].sum() for b in range(ctas))
    return busiest / (cost.sum() / ctas)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=132, help="persistent blocks (the H200's multiprocessors)")
    parser.add_argument("--tile-cost", type=float, default=1.5, help="a tile's fixed cost, in K/V blocks")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    cases = [(f"{b} x {q} over {kv}", [q] * b, [kv] * b) for b, q, kv in CASES]
    cases.append((f"ragged, {len(RAGGED[0])} requests", *RAGGED))
    for name, queries, kv in cases:
        blocks = tile_blocks(queries, kv)
        tiles = len(blocks) * HQ
        rows.append({"case": name, "tiles": tiles,
                     "waves": f"{tiles / args.blocks:.2f}",
                     "in turn: busiest / mean": f"{busiest_over_mean(blocks, args.blocks, args.tile_cost, False):.3f}",
                     "counter: busiest / mean": f"{busiest_over_mean(blocks, args.blocks, args.tile_cost, True):.3f}"})
    text = (f"# Persistent blocks' balance over causal prefill tiles\n\n`python3 -m benchmarks.tile_balance "
            f"--blocks {args.blocks} --tile-cost {args.tile_cost}`: {HQ} query heads, {BLOCK_M}-query tiles, "
            f"{BLOCK_N}-key blocks; a tile's time modelled as its blocks + {args.tile_cost}.\n\n"
            + markdown_table(COLUMNS, rows))
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tile_balance.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
