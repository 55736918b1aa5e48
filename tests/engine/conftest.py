import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py

import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread (restored afterwards). Nets of hundreds of tiny ops gain
    nothing from a second thread, and on a busy 2-core machine OpenMP barriers can stall them 10×+."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
