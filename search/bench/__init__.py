"""Research benchmarks: each prints figures (and ratios) measured in one run.

Speed and the space (`throughput`), how well cheap signals predict a design's final accuracy and
which pruner keeps the best (`fidelity`), recipes over seeds (`recipe`), the confirmation race at a seed noise (`race`), seed noise (`noise`) and
parameter importance (`importance`). Each module is imported only when its bench runs.
"""

from __future__ import annotations

import importlib

BENCHES = {"data": "throughput", "train": "throughput", "space": "throughput", "workers": "throughput",
           "layout": "throughput", "dropout": "throughput",
           "fidelity": "fidelity", "proxy": "proxy", "recipe": "recipe", "race": "race", "gpu": "gpu"}


def run_bench(what: str, **options) -> int:
    module = importlib.import_module(f"search.bench.{BENCHES[what]}")
    return getattr(module, f"bench_{what}")(**options)
