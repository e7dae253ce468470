"""benchmarks/tile_balance.py: the launcher's causal plans and the two ways persistent blocks take their tiles."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import tile_balance


def test_plans_list_each_requests_longest_tiles_first():
    # 2 requests x 256 queries over 512 keys: tiles of 128 queries see 3 and 4 blocks of 128 keys.
    assert tile_balance.tile_blocks([256, 256], [512, 512]).tolist() == [4, 3, 4, 3]


def test_ragged_requests_are_planned_with_the_most_kv_first_and_match_bench_attentions_row():
    from benchmarks.bench_attention import RAGGED_CASE

    assert tile_balance.RAGGED == RAGGED_CASE  # the row modelled is the one bench_attention times
    # 128 queries over 1024 keys (one tile, 8 blocks), then 256 over 512 (tiles of 3 and 4 blocks) and 100 over 300
    # (one tile of 3 blocks: its 100 queries see up to key 300): the request with the most KV comes first.
    assert tile_balance.tile_blocks([256, 128, 100], [512, 1024, 300]).tolist() == [8, 4, 3, 3]


def test_counter_hands_tiles_to_the_first_free_block_and_turns_follow_the_list_from_its_end():
    # One item of 32 heads: each head's tile costs 1 block + 1; 3 blocks over 32 tiles of 2 -> 11, 11, 10 tiles.
    blocks = np.array([1])
    assert tile_balance.busiest_over_mean(blocks, 3, 1.0, dynamic=True) == pytest.approx(22 / (64 / 3))
    assert tile_balance.busiest_over_mean(blocks, 3, 1.0, dynamic=False) == pytest.approx(22 / (64 / 3))
    # Items of 3 and 1 blocks (32 heads each) over 32 blocks: in turn, every block takes one tile of each
    # (balanced); unequal heads per block show once the block count does not divide 32.
    uneven = np.array([3, 1])
    assert tile_balance.busiest_over_mean(uneven, 32, 0.0, dynamic=False) == pytest.approx(1.0)
    assert tile_balance.busiest_over_mean(uneven, 32, 0.0, dynamic=True) == pytest.approx(1.0)
    # Over 24 blocks: in turn from the end, blocks 8-15 take a 1 and two 3s (7, mean 128 / 24); the counter hands
    # the 3s out first and the 1s to the blocks that got free first (busiest 3 + 3).
    assert tile_balance.busiest_over_mean(uneven, 24, 0.0, dynamic=False) == pytest.approx(7 / (128 / 24))
    assert tile_balance.busiest_over_mean(uneven, 24, 0.0, dynamic=True) == pytest.approx(6 / (128 / 24))


def test_table_names_both_ways(tmp_path):
    assert tile_balance.main(["--out", str(tmp_path)]) == 0
    text = (tmp_path / "tile_balance.md").read_text()
    assert "| 4 x 1024 over 4096 | 1024 | 7.76 |" in text and "counter: busiest / mean" in text
    assert "| ragged, 8 requests | 1824 | 13.82 |" in text
