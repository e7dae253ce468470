"""The schedule's host-to-device staging (kernelarena.kernels.attention.staging.StagedCopy).

On the CPU the copy is a plain tensor copy; on a GPU the same checks run through the CUDA runtime (ctypes)
and through torch's copy_, and a plan that waits for an earlier copy must see that copy finished.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernelarena.kernels.attention.staging import StagedCopy

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def fill_and_commit(staged: StagedCopy, values: np.ndarray) -> np.ndarray:
    host = staged.begin()
    host[: len(values)] = values
    staged.commit(len(values))
    return host


def test_buffers_alternate_and_the_prefix_reaches_the_device():
    device_words = torch.full((4096,), -7, dtype=torch.int32, device=DEVICE)
    staged = StagedCopy(device_words)
    rng = np.random.default_rng(0)
    first = fill_and_commit(staged, rng.integers(0, 1 << 30, 100, dtype=np.int32))
    second = fill_and_commit(staged, rng.integers(0, 1 << 30, 1500, dtype=np.int32))
    assert first is not second  # a plan never writes the buffer the previous plan's copy may still read
    assert fill_and_commit(staged, np.arange(3, dtype=np.int32)) is first
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    assert device_words[:3].tolist() == [0, 1, 2]
    # The 3-word copy is rounded up to 1024 words (from the first buffer); words past it keep the second copy.
    assert np.array_equal(device_words[3:1024].cpu().numpy(), first[3:1024])
    assert np.array_equal(device_words[1024:1500].cpu().numpy(), second[1024:1500])
    assert device_words[2048:].eq(-7).all()  # nothing past the rounded-up 1500 (2048) words was written


@pytest.mark.gpu
@pytest.mark.parametrize("use_runtime", [True, False])
def test_gpu_copy_paths_agree_and_wait_for_the_copy(use_runtime, monkeypatch):
    monkeypatch.setattr(StagedCopy, "use_runtime", use_runtime)
    device_words = torch.zeros(1 << 16, dtype=torch.int32, device="cuda")
    staged = StagedCopy(device_words)
    assert (staged._lib is not None) == use_runtime, "the CUDA runtime library was not found in the process"
    snapshots = []
    for step in range(6):
        torch.cuda._sleep(2_000_000)  # keep the stream busy (about a millisecond): the host runs ahead
        host = fill_and_commit(staged, np.full(5000, step, dtype=np.int32))
        assert host is staged.host_np[staged.stage]
        snapshots.append(device_words[:5000].clone())  # queued after this copy on the same stream
    torch.cuda.synchronize()
    # Had begin() not waited for the copy of two plans ago, a later step's values would have reached an
    # earlier copy (its buffer rewritten before the stream got to it).
    for step, snap in enumerate(snapshots):
        assert torch.equal(snap.cpu(), torch.full((5000,), step, dtype=torch.int32)), f"copy {step} was overwritten"
