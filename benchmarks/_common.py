"""What every benchmark records next to its numbers, so each figure can be traced and rerun."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def _git(*args: str, strip: bool = True) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True,
                             cwd=Path(__file__).parent, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.strip() if strip else out


def changed_paths(porcelain: str) -> list[str]:
    """The paths of `git status --porcelain` lines ('XY path'). The two status columns can
    be blank (' M' is a change not yet staged), so the text must not be stripped first."""
    return [line[3:] for line in porcelain.splitlines() if line.strip()]


def _git_state() -> tuple[str, bool]:
    """(HEAD, dirty). Result files do not make a tree dirty: they are what benchmarks write,
    and a run in chunks (or two runs at once) would otherwise mark every file after the first
    dirty though no code changed."""
    status = _git("status", "--porcelain", strip=False)
    changed = [] if status == "unknown" else [
        p for p in changed_paths(status) if not p.strip('"').startswith("benchmarks/results/")]
    return _git("rev-parse", "HEAD"), status == "unknown" or bool(changed)


# taken when a benchmark starts (every one imports this module first): the code that ran, even
# if commits land while it runs
_GIT_AT_START = _git_state()


def _cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; `platform.processor()` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def provenance() -> dict:
    commit, dirty = _GIT_AT_START
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit,
        "dirty": dirty,
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            # float results (adaptation runs, metadata labels) follow the vector unit torch's
            # kernels use, so two machines with the same platform string can differ
            "cpu": _cpu_model(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
    }


def write(name: str, payload: dict) -> None:
    """Print the JSON and store it as benchmarks/results/<name>.json."""
    text = json.dumps(provenance() | payload, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / f"{name}.json.tmp"
    tmp.write_text(text + "\n")
    tmp.replace(RESULTS / f"{name}.json")
