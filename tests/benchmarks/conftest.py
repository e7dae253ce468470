import os

import torch

# Before any test module here imports a Triton kernel (benchmarks/bench_attention.py imports the attention
# kernels): a kernel decorated while TRITON_INTERPRET is unset needs a GPU driver, for every later test too.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
