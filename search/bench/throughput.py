"""Speed and space benchmarks: each prints its figures and the ratio, all measured in one run.

    python -m search bench data      # training-batch images/s: ours vs the seeds' DataLoader
    python -m search bench train     # seed-000 training images/s: seeds' loop vs ours, fp32 and bf16
    python -m search bench space     # 1,000 draws at budget 8,000: feasibility, budget use
    python -m search bench workers   # finished trials/hour: 1 worker vs 2 workers
    python -m search bench layout    # fp32 training time per design: NCHW vs channels-last
    python -m search bench dropout   # CPU dropout masks per design: raw bit-generator outputs vs bytes
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search.bench.common import mixed_designs, space_name
from search.config import check_budget
from search.process import child_env
from space.model import build
from space.presets import PRESETS
from trainers.augment import normalize, random_affine, to_unit
from trainers.data import Split, load_data
from trainers.loop import evaluate, resolve_device, train

MEAN, STD = 0.1307, 0.3081


def _seeds_loader(data_dir: str, batch_size: int = 64, num_workers: int = 0):
    """The seed notebooks' input pipeline: per-image PIL transforms through a DataLoader."""
    from torchvision import datasets, transforms

    ds = datasets.MNIST(data_dir, train=True, download=False, transform=transforms.Compose([
        transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,)), transforms.RandomRotation(7)]))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers)


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("nan")


def _time_loader(loader, seconds: float) -> float:
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, t0 = 0, time.perf_counter()
    for x, _ in it:
        n += len(x)
        if time.perf_counter() - t0 > seconds:
            break
    return _rate(n, time.perf_counter() - t0)


def _time_ours(split: Split, seconds: float, batch_size: int = 64) -> float:
    gen = torch.Generator(device=split.x.device).manual_seed(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        perm = torch.randperm(len(split), generator=gen, device=split.x.device)
        for b in range(0, len(split) - batch_size + 1, batch_size):
            idx = perm[b : b + batch_size]
            normalize(random_affine(to_unit(split.x[idx]), gen, rotate=7), MEAN, STD)
            split.y[idx]  # the labels are gathered too, as in training
            n += len(idx)
            if time.perf_counter() - t0 > seconds:
                break
    if split.x.is_cuda:
        torch.cuda.synchronize()
    return _rate(n, time.perf_counter() - t0)


def bench_data(*, seconds: float, data_dir: str, device: str, **_) -> int:
    device = resolve_device(device)
    data = load_data("mnist", data_dir, device)
    print(f"input pipeline, batch 64, rotation 7 deg, {seconds:.0f}s each, device {device}")
    theirs = _time_loader(_seeds_loader(data_dir, num_workers=0), seconds)
    ours = _time_ours(data.train, seconds)
    print(f"  seeds' pipeline (ToTensor+Normalize+RandomRotation, DataLoader num_workers=0): {theirs:10,.0f} images/s")
    print(f"  ours (uint8 on device, whole-batch affine warp):                           {ours:10,.0f} images/s")
    print(f"  ratio ours / seeds: {ours / theirs:.1f}x")
    return 0


def _seeds_train_loop(model, loader, images: int, device: torch.device) -> float:
    """The training loop of seed 000 as written: log_softmax + nll, .item() and tqdm every batch."""
    from tqdm import tqdm

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    n, t0 = 0, None
    with open(os.devnull, "w") as sink:
        pbar = tqdm(loader, file=sink)
        train_loss = correct = 0
        for batch_idx, (data, target) in enumerate(pbar):
            if batch_idx == 3:  # warm-up batches excluded
                n, t0 = 0, time.perf_counter()
            data, target = data.to(device), target.to(device)
            opt.zero_grad()
            output = F.log_softmax(model(data), dim=1)
            loss = F.nll_loss(output, target)
            loss.backward()
            opt.step()
            train_loss += loss.item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
            pbar.set_description(desc=f"loss={loss.item()} batch_id={batch_idx}")
            n += len(data)
            if t0 is not None and n >= images:
                break
    return _rate(n, time.perf_counter() - t0)


def _pass_seconds(spec, recipe, sub: Split, data, precision: str, *, compile: bool = False,
                  channels_last: bool | None = None, repeats: int = 1) -> float:
    """Seconds of one training pass over `sub`, the fastest of `repeats`, after a warm-up run
    (compiled: it pays the compilation; eager: oneDNN picks and caches its kernels on first use)."""
    n = max(256, 2 * recipe.batch_size)
    kw = dict(evals={}, norm=(data.mean, data.std), precision=precision, compile=compile, channels_last=channels_last)
    train(spec, Split(sub.x[:n], sub.y[:n]), recipe, **kw)
    return min(train(spec, sub, recipe, **kw).epochs[0].seconds for _ in range(repeats))


def _ours(spec, recipe, sub: Split, data, precision: str, compile: bool = False) -> float:
    seconds = _pass_seconds(spec, recipe, sub, data, precision, compile=compile)
    return _rate(len(sub) // recipe.batch_size * recipe.batch_size, seconds)


def bench_train(*, data_dir: str, device: str, **_) -> int:
    device = resolve_device(device)
    data = load_data("mnist", data_dir, device)
    spec, recipe = PRESETS["seed-000"]
    recipe = replace(recipe, epochs=1)
    images = 64 * 200  # enough batches for a stable rate on a 2-core CPU
    print(f"seed-000 ({spec.dropout} dropout, batch {recipe.batch_size}), {images:,} training images each, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    theirs = _seeds_train_loop(build(spec).to(device), _seeds_loader(data_dir, num_workers=0), images, device)
    sub = Split(data.train.x[: images + 3 * 64], data.train.y[: images + 3 * 64])
    fp32 = _ours(spec, recipe, sub, data, "fp32")
    bf16 = _ours(spec, recipe, sub, data, "bf16")
    t0 = time.perf_counter()
    compiled = _ours(spec, recipe, sub, data, "bf16", compile=True)
    compile_wall = time.perf_counter() - t0
    print(f"  seeds' loop as written (DataLoader num_workers=0, PIL transforms, .item() per batch): {theirs:8,.0f} images/s")
    print(f"  ours, fp32 (device-resident batches, whole-batch warps, bulk-mask dropout): {fp32:8,.0f} images/s")
    print(f"  ours, bf16 autocast:                                                    {bf16:8,.0f} images/s")
    print(f"  ours, bf16 + torch.compile (after a warm-up run; both runs {compile_wall:.0f} s):     {compiled:8,.0f} images/s")
    print(f"  ratio ours fp32 / seeds: {fp32 / theirs:.2f}x; bf16 / seeds: {bf16 / theirs:.2f}x; "
          f"bf16 / fp32: {bf16 / fp32:.2f}x; compiled / bf16: {compiled / bf16:.2f}x")
    print("  note: on CPU our eager loop also replaces torch's nn.Dropout by a bulk-mask dropout of the same rate "
          "(trainers/dropout.py); the seeds' loop and the compiled model use torch's")
    model = build(spec).to(device).eval()
    evaluate(model, data.test, (data.mean, data.std))  # warm-up
    t0 = time.perf_counter()
    evaluate(model, data.test, (data.mean, data.std))
    print(f"  inference (batch 1000, test set): {_rate(len(data.test), time.perf_counter() - t0):,.0f} images/s")
    if device.type == "cuda":
        for name in ("seed-004", "seed-000"):
            s, r = PRESETS[name]
            res = train(s, data.train, replace(r, epochs=2), evals={}, norm=(data.mean, data.std), precision="auto")
            print(f"  {name}: {res.epochs[-1].seconds:.2f} s per 50,000-image epoch (target < 1 s)")
    return 0


def bench_space(*, budget: int = 8000, separable: bool = True, **_) -> int:
    import optuna

    from space import Infeasible, count_params, sample

    check_budget(budget, separable)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    n = 1000
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    uses, as_drawn, infeasible = [], 0, 0
    t0 = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        try:
            d = sample(trial, budget, 15, separable=separable)
        except Infeasible:
            infeasible += 1
        else:
            uses.append(count_params(d.spec) / budget)
            as_drawn += d.drawn_params is not None and d.drawn_params <= budget
        study.tell(trial, 0.0)
    ms = (time.perf_counter() - t0) / n * 1e3
    uses.sort()
    print(f"{n} random draws at budget {budget:,} from {space_name(separable)} ({ms:.1f} ms per draw, fitting included)")
    print(f"  within budget with the widths as drawn:                  {as_drawn / n:6.1%}")
    print(f"  trainable after width fitting (never over budget):         {len(uses) / n:6.1%}")
    print(f"  infeasible (no member fits; recorded, not trained):        {infeasible / n:6.1%}")
    print(f"  budget use of trainable candidates: median {statistics.median(uses):.1%}, "
          f"p10 {uses[len(uses) // 10]:.1%}, max {uses[-1]:.1%}")
    return 0


def _timed_search(workers: int, data_dir: str, trials: int) -> tuple[float, float, float]:
    """(wall s with start-up, s from first trial start to last trial end, training images/s)."""
    import optuna

    from search.store.records import val_curve

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "search", "--budget", "8000", "--trials", str(trials), "--epochs", "2",
               "--subset", "12000", "--sampler", "random", "--pruner", "none", "--top-k", "0", "--no-baselines",
               "--workers", str(workers), "--data-dir", str(Path(data_dir).resolve()), "--study-name", "bench"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=tmp, env=child_env(), check=True, capture_output=True)
        wall = time.perf_counter() - t0
        done = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/studies/bench.db").trials
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        images = sum(len(val_curve(t)) for t in done) * 12000
        return wall, span, images / span


def bench_workers(*, data_dir: str, **_) -> int:
    trials = 8
    print(f"the same search ({trials} trials x 2 epochs on 12,000 images, random sampler, no pruning) "
          "with 1 worker (all threads) and 2 single-thread workers")
    one, one_span, one_ips = _timed_search(1, data_dir, trials)
    two, two_span, two_ips = _timed_search(2, data_dir, trials)
    for name, wall, span, ips in (("1 worker: ", one, one_span, one_ips), ("2 workers:", two, two_span, two_ips)):
        print(f"  {name} {trials / span * 3600:6.0f} finished trials/hour while trials ran "
              f"({span:5.1f}s), {trials / wall * 3600:6.0f}/hour with start-up ({wall:5.1f}s); "
              f"{ips:,.0f} training images/s")
    print(f"  ratio 2 / 1 workers: {one_span / two_span:.2f}x trials/hour while trials ran, "
          f"{one / two:.2f}x with start-up, {two_ips / one_ips:.2f}x training images/s")
    print("  (each worker draws its own random architectures, so the two runs train different models)")
    return 0


def bench_layout(*, budget: int = 8000, designs: int = 6, seed: int = 0, data_dir: str, device: str, **_) -> int:
    """fp32 training time per design, NCHW against channels-last: the search's start points at
    `budget` and `designs` random draws (recipes included), each on the same 6,400 images."""

    check_budget(budget, True)
    device = resolve_device(device)
    data = load_data("mnist", data_dir, device)
    sub = Split(data.train.x[:6400], data.train.y[:6400])
    print(f"fp32 training pass over {len(sub):,} images per design at budget {budget:,}, NCHW against "
          f"channels-last, device {device}, torch threads {torch.get_num_threads()}")
    totals = [0.0, 0.0]
    for label, spec, recipe in mixed_designs(designs, budget, 1, seed):
        recipe = replace(recipe, epochs=1)
        nchw, last = (_pass_seconds(spec, recipe, sub, data, "fp32", channels_last=cl, repeats=2) for cl in (False, True))
        totals[0] += nchw
        totals[1] += last
        print(f"  {label:24s} batch {recipe.batch_size:3d}  NCHW {nchw:6.2f} s  channels-last {last:6.2f} s  "
              f"ratio {nchw / last:.2f}x", flush=True)
    print(f"  all designs: NCHW {totals[0]:.1f} s, channels-last {totals[1]:.1f} s, ratio {totals[0] / totals[1]:.2f}x "
          "(what a search training these designs saves; trainers.loop.wants_channels_last picks the order)")
    return 0


def _bytes_mask(rng: np.random.Generator, n: int, threshold: int, scale: np.float32) -> torch.Tensor:
    """The same mask drawn through `Generator.bytes`, the comparison `bench dropout` times."""
    bits = np.frombuffer(rng.bytes(2 * n), dtype=np.uint16)
    return torch.from_numpy((bits >= threshold).astype(np.float32) * scale)


def _dropout_sizes(spec, batch_size: int) -> list[int]:
    """Elements each dropout layer of `spec` sees in one training batch."""
    net, sizes = build(spec).train(), []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(i[0].numel()))
             for m in net.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    with torch.no_grad():
        net(torch.zeros(batch_size, spec.in_channels, spec.in_size, spec.in_size))
    for h in hooks:
        h.remove()
    return sizes


def bench_dropout(*, budget: int = 8000, designs: int = 6, seed: int = 0, data_dir: str, **_) -> int:
    """The CPU dropout masks of one training pass per design, drawn from the bit generator's raw
    outputs (trainers.dropout) against `Generator.bytes`, beside the whole pass they belong to."""
    from trainers.dropout import BulkMaskDropout

    check_budget(budget, True)
    data = load_data("mnist", data_dir, "cpu")
    sub = Split(data.train.x[:6400], data.train.y[:6400])
    print(f"dropout masks of a training pass over {len(sub):,} images per design at budget {budget:,}, CPU, "
          f"torch threads {torch.get_num_threads()}; pass = the trainer's own (fp32, raw-output masks)")
    totals = [0.0, 0.0, 0.0]
    for label, spec, recipe in mixed_designs(designs, budget, 1, seed):
        recipe = replace(recipe, epochs=1)
        sizes = _dropout_sizes(spec, recipe.batch_size) * (len(sub) // recipe.batch_size)
        if not sizes:
            print(f"  {label:24s} no dropout")
            continue
        layer = BulkMaskDropout(spec.dropout, np.random.Generator(np.random.PCG64(seed)))
        rng = np.random.Generator(np.random.PCG64(seed))
        times = []
        for draw in (lambda n: _bytes_mask(rng, n, layer.threshold, layer.scale), layer.mask):
            t0 = time.perf_counter()
            for n in sizes:
                draw(n)
            times.append(time.perf_counter() - t0)
        whole = _pass_seconds(spec, recipe, sub, data, "fp32")
        for i, v in enumerate((*times, whole)):
            totals[i] += v
        print(f"  {label:24s} batch {recipe.batch_size:3d}  masks: bytes {times[0]:5.2f} s  raw {times[1]:5.2f} s "
              f"({times[0] / times[1]:.2f}x)  pass {whole:6.2f} s (raw masks {100 * times[1] / whole:.0f}% of it)",
              flush=True)
    print(f"  all designs: masks bytes {totals[0]:.1f} s, raw {totals[1]:.1f} s ({totals[0] / totals[1]:.2f}x); "
          f"passes {totals[2]:.1f} s, so raw masks save {100 * (totals[0] - totals[1]) / (totals[2] + totals[0] - totals[1]):.0f}% "
          "of what the passes took with bytes masks")
    return 0
