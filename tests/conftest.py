import os

import pytest
import torch

# The CI machine has 2 cores; keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def ref_link():
    from dmrx.scenarios import get_link

    return get_link("ref-4prb")
