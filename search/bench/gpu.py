"""`bench gpu`: the GPU path in one command, sized to finish within a short loan of a GPU.

    python -m search bench gpu                 # on the GPU: the full check, under 9 minutes on an H100
    python -m search bench gpu --device cpu    # the same code path as a dry run on a subset (CI runs it)

Prints, with ratios measured in the same run:
1. seed-004 on the 50,000 training images: seconds per epoch in fp32, bf16 and bf16 with
   torch.compile (mode "reduce-overhead": CUDA graphs for the per-step launch cost);
2. finished trials per hour with 1, 4 and 8 worker processes sharing the device;
3. the wall time of a 12-trial search at 8,000 params with its winner, run with the worker count
   that stage 2 found fastest;
4. confirmation of the top design and the baseline with 3 seeds each, on those workers.
Each stage is estimated from the epoch time of stage 1 first and skipped, saying so, if it would
push the whole run past the time budget. Fusing the seeds of a confirmation into one model is not
built, so there is no fused figure.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from search.config import default_search_epochs
from search.process import child_env
from space.presets import PRESETS
from trainers.data import Split, load_data
from trainers.loop import resolve_device, train
from trainers.precision import resolve_precision

# The whole run on one H100: 9 minutes leaves a 10-minute loan call room to start and copy back.
# On an H100, 16 trials per worker count at 1, 2, 4 and 8 workers took 405 s on their own, which
# left no room for stage 3; 8 trials at 1, 4 and 8 workers keep the ratios and make room.
BUDGET_S = 540.0


@dataclass(frozen=True)
class Scale:
    images: int | None  # training images (None: all 50,000)
    epochs: int  # epochs of the search and the confirmation
    timing_epochs: int  # epochs timed per precision in stage 1
    trials: int  # trials of the search in stage 3
    workers: tuple[int, ...]  # worker counts of stage 2
    worker_trials: int  # trials per worker count in stage 2
    seeds: int  # confirmation seeds in stage 4


FULL = Scale(images=None, epochs=15, timing_epochs=2, trials=12, workers=(1, 4, 8), worker_trials=8, seeds=3)
DRY = Scale(images=1000, epochs=1, timing_epochs=1, trials=3, workers=(1, 2), worker_trials=2, seeds=2)


def _cli(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", *args], cwd=cwd, env=child_env(), check=True,
                          capture_output=True, text=True)


def epoch_seconds(split: Split, norm, device: torch.device, precision: str, compile_mode: str | None,
                  epochs: int) -> float:
    """Seconds per epoch of seed-004, the first epoch (warm-up, compilation) excluded when there are two."""
    spec, recipe = PRESETS["seed-004"]
    result = train(spec, split, replace(recipe, epochs=epochs), evals={}, norm=norm, precision=precision,
                   compile=compile_mode or False)
    secs = [e.seconds for e in result.epochs]
    return sum(secs[1:]) / len(secs[1:]) if len(secs) > 1 else secs[0]


def search_args(scale: Scale, data_dir: str, device: str, trials: int, epochs: int) -> list[str]:
    return ["--budget", "8000", "--trials", str(trials), "--epochs", str(epochs), "--device", device,
            "--data-dir", str(Path(data_dir).resolve()), "--sampler", "random", "--seed", "0"] + (
        ["--subset", str(scale.images)] if scale.images else [])


def trials_per_hour(scale: Scale, data_dir: str, device: str, workers: int) -> float:
    """Finished trials per hour of a search with `workers` processes (start-up included), 2 epochs each."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _cli(search_args(scale, data_dir, device, scale.worker_trials, min(2, scale.epochs))
             + ["--workers", str(workers), "--top-k", "0", "--pruner", "none", "--no-baselines"], tmp)
        return scale.worker_trials / (time.perf_counter() - t0) * 3600


def bench_gpu(*, device: str, data_dir: str, **_) -> int:
    dev = resolve_device(device)
    scale = FULL if dev.type == "cuda" else DRY
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU (dry run on a subset)"
    start = time.perf_counter()
    left = lambda: BUDGET_S - (time.perf_counter() - start)  # noqa: E731
    print(f"bench gpu on {name}: {scale}")
    data = load_data("mnist", data_dir, dev, subset=scale.images)
    norm = (data.mean, data.std)

    print(f"1. seed-004, {len(data.train):,} training images, seconds per epoch:")
    times = {}
    for label, precision, mode in (("fp32", "fp32", None), ("bf16", "bf16", None),
                                   ("bf16 + compile (reduce-overhead)", "bf16", "reduce-overhead")):
        if mode and dev.type != "cuda":
            print(f"   {label:34} skipped: CUDA graphs need a GPU")
            continue
        times[label] = epoch_seconds(data.train, norm, dev, precision, mode, scale.timing_epochs)
        print(f"   {label:34} {times[label]:8.2f} s  ({times['fp32'] / times[label]:.2f}x fp32)")
    # what the search below trains in (--precision auto); a trial's epoch evaluates validation too
    epoch = times[resolve_precision("auto", dev.type)] * (1 + len(data.val) / len(data.train))

    print(f"2. finished trials per hour ({scale.worker_trials} trials x {min(2, scale.epochs)} epochs, one device):")
    rates = {}
    for w in scale.workers:
        estimate = 20 + scale.worker_trials * min(2, scale.epochs) * epoch / w
        if estimate > left():
            print(f"   {w} workers: skipped, would take about {estimate:.0f} s of the {left():.0f} s left")
            continue
        rates[w] = trials_per_hour(scale, data_dir, str(dev), w)
        print(f"   {w} workers: {rates[w]:8.0f} trials/hour ({rates[w] / rates[scale.workers[0]]:.2f}x 1 worker)")

    workers = max(rates, key=rates.get) if rates else scale.workers[0]
    speedup = rates[workers] / rates[scale.workers[0]] if rates else 1.0
    # every trial at the search's default length (pruning only shortens it); confirmation's seeds,
    # at the protocol's, share the workers too
    trial_epochs = default_search_epochs(None, scale.epochs) or scale.epochs
    estimate = 20 + (scale.trials * trial_epochs + scale.seeds * 2 * scale.epochs) * epoch / speedup
    print(f"3. a {scale.trials}-trial search at 8,000 params, {trial_epochs} epochs a trial, {workers} worker(s), "
          f"then confirmation of the top design and the baseline with {scale.seeds} seeds of {scale.epochs} epochs:")
    if estimate > left():
        print(f"   skipped, would take about {estimate:.0f} s of the {left():.0f} s left: not within the budget here")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            out = _cli(search_args(scale, data_dir, str(dev), scale.trials, scale.epochs)
                       + ["--workers", str(workers), "--top-k", "1", "--confirm-seeds", str(scale.seeds),
                          "--confirm-cap", str(scale.seeds), "--refit", "none"], tmp).stdout
            wall = time.perf_counter() - t0
        lines = out.splitlines()
        search = next((x for x in lines if x.startswith("search: ")), "search: ?")
        confirm = next((x for x in lines if x.startswith("confirmation: ")), "confirmation: ?")
        winner = next((x for x in lines if x.startswith(("winner: ", "best so far"))), "no winner line")
        print(f"   wall {wall:.0f} s ({search}, {confirm}); {winner}")
        print(f"4. confirmation: {scale.seeds} seeds per design on the {workers} worker(s) ({confirm}); "
              "fused seeds: not built")
    if estimate > left() + (time.perf_counter() - start):
        print("4. confirmation: skipped with stage 3")
    print(f"total {time.perf_counter() - start:.0f} s of a {BUDGET_S:.0f} s budget"
          + ("" if time.perf_counter() - start <= BUDGET_S else ": OVER the budget"))
    return 0
