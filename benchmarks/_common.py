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


def provenance() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True,
                                  cwd=Path(__file__).parent, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
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
