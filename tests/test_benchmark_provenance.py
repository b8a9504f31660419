"""`benchmarks/_common.py` records the commit and whether the tree was dirty next to every
result; result files themselves must not count as a dirty tree."""

import pytest


@pytest.fixture(scope="module")
def common(load_benchmark):
    return load_benchmark("_common")


def test_changed_paths_keep_their_first_letter(common):
    porcelain = " M benchmarks/results/a.json\nM  nn/adapt.py\n?? notes.txt\n"
    assert common.changed_paths(porcelain) == ["benchmarks/results/a.json", "nn/adapt.py",
                                               "notes.txt"]


@pytest.mark.parametrize("porcelain, dirty", [
    (" M benchmarks/results/a.json\n", False),      # an unstaged result file first in the list
    (" M benchmarks/results/a.json\n M nn/adapt.py\n", True),
    ("?? benchmarks/results/new.json\n", False),
    ("", False),
])
def test_only_code_changes_make_a_run_dirty(common, monkeypatch, porcelain, dirty):
    def fake_git(*args, strip=True):
        out = porcelain if args[0] == "status" else "abc123\n"
        return out.strip() if strip else out

    monkeypatch.setattr(common, "_git", fake_git)
    assert common._git_state() == ("abc123", dirty)
