import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

# The CI machine has 2 cores; keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def ref_link():
    from dmrx.scenarios import get_link

    return get_link("ref-4prb")


def _load_benchmark(name: str):
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))  # the scripts import their sibling _common
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_bench", bench / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(bench))


@pytest.fixture(scope="session")
def load_benchmark():
    """`load_benchmark(name)` imports benchmarks/<name>.py as a module, for tests of a
    benchmark's own logic."""
    return _load_benchmark
