"""Suite-wide settings: one intra-op thread per test process.

The suite's models are tiny, so threading buys nothing and two BLAS/OpenMP threads fighting
for two busy cores make small ops up to ~100x slower. Results do not depend on this.
"""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, the previous count restored after it.

    Modules of many small ops opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``:
    on a loaded machine they run faster and steadier on one thread than on contended ones.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped where no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (egs/neural_fca/gpu_check.py runs these on a GPU)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
