"""Suite-wide settings: one intra-op thread per test process.

The suite's models are tiny, so threading buys nothing and two BLAS/OpenMP threads fighting
for two busy cores make small ops up to ~100x slower. Results do not depend on this.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
