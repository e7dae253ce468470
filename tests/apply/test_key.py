"""Reading dispatch keys and checking calls against a definition."""

from __future__ import annotations

import pytest
import torch

from kernelarena.apply.key import key_positions, make_key_reader, merge_keywords, read_axes
from kernelarena.store import TraceSet

from .tiny_dataset import definition


def test_key_tensors_cover_every_variable_axis(example_dataset):
    dataset = TraceSet.load(example_dataset)
    decode = dataset.definition("gqa_paged_decode_h32_kv8_d128_ps16")
    names = list(decode.inputs)
    chosen = [names[i] for i in key_positions(decode)]
    covered = {a for n in chosen for a in decode.inputs[n].shape}
    assert set(decode.var_axes) <= covered and chosen[0] == "q"
    assert key_positions(dataset.definition("rmsnorm_h4096")) == [0]


def test_key_is_shape_dtype_device_of_the_key_tensor():
    read = make_key_reader(definition())
    x = torch.ones(3, 8)
    assert read((x, torch.ones(8))) == ((3, 8), torch.float32, torch.device("cpu"))
    assert read((x.double(), torch.ones(8))) != read((x, torch.ones(8)))


def test_read_axes_checks_the_whole_call():
    d = definition()
    assert read_axes(d, (torch.ones(3, 8), torch.ones(8))) == {"rows": 3}
    for bad, message in [((torch.ones(3, 9), torch.ones(8)), "fixes it at 8"),
                         ((torch.ones(3, 8), torch.ones(8, dtype=torch.float16)), "float16"),
                         ((torch.ones(3, 8),), "1 inputs given")]:
        with pytest.raises(ValueError, match=message):
            read_axes(d, bad)


def test_merge_keywords_follows_definition_order():
    names = ("x", "w", "y")
    assert merge_keywords(names, (1,), {"w": 2}) == (1, 2)
    assert merge_keywords(names, (), {"w": 2, "x": 1, "y": 3}) == (1, 2, 3)
    assert merge_keywords(names, (1,), {"y": 3}) is None
    assert merge_keywords(names, (1,), {"weight": 2}) is None


def test_key_of_a_definition_whose_axes_span_several_inputs(example_dataset):
    decode = TraceSet.load(example_dataset).definition("gqa_paged_decode_h32_kv8_d128_ps16")
    read = make_key_reader(decode)

    def call(batch, pages, used):
        return (torch.empty(batch, 32, 128, dtype=torch.bfloat16),
                torch.empty(pages, 16, 8, 128, dtype=torch.bfloat16), torch.empty(pages, 16, 8, 128),
                torch.empty(batch + 1, dtype=torch.int32), torch.empty(used, dtype=torch.int32),
                torch.empty(batch, dtype=torch.int32), 0.088)

    assert read(call(2, 10, 5)) == read(call(2, 10, 5))
    assert len({read(call(2, 10, 5)), read(call(2, 10, 6)), read(call(3, 10, 5)), read(call(2, 11, 5))}) == 4
    assert read_axes(decode, call(2, 10, 5)[:2] + (call(2, 10, 5)[1],) + call(2, 10, 5)[3:]) == {
        "batch_size": 2, "num_pages": 10, "len_indptr": 3, "num_kv_indices": 5}
