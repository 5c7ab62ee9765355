"""`show` and `train`: one design at a time, picked as a preset, a spec file or a study's trial."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from search.baselines import load_design_file
from search.errors import UserError
from search.store.storage import check_writable_dir
from space.count import count_params
from space.presets import PRESETS
from space.recipe import Recipe
from space.spec import ArchSpec


def pick_design(*, preset: str | None, spec: Path | None, trial: int | None, study: str,
                storage: str | None) -> tuple[ArchSpec, Recipe, str]:
    chosen = [x for x in (preset, spec, trial) if x is not None]
    if len(chosen) != 1:
        raise UserError("give exactly one of --preset, --spec or --trial")
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        s, r = PRESETS[preset]
        return s, r, preset
    if spec is not None:
        s, r = load_design_file(spec)
        return s, r, Path(spec).stem
    from search.store.records import design
    from search.store.study import load_existing, trained_trial

    s, r = design(trained_trial(load_existing(study, storage), trial))
    return s, r, f"{study}-trial{trial}"


def train_design(spec: ArchSpec, recipe: Recipe, label: str, *, epochs: int, seed: int, device: str,
                 dataset: str, data_dir: str, subset: int | None, out: Path | None, compile: bool,
                 target: float | None = None, precision: str = "auto", fit_on: str = "all",
                 data_seed: int | None = None, val_size: int = 10_000, image_size: int | None = None) -> int:
    """Train on all training images (fit_on="all") or on the training split as confirmation does
    (fit_on="train"), test after every epoch, save weights + results."""
    from search.config import absolute_dataset, check_dataset

    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    check_dataset(dataset)
    dataset = absolute_dataset(dataset)
    out = Path(out) if out else Path("studies") / f"train-{label}"
    check_writable_dir(out, "output folder")
    import torch

    from trainers.data import load_data
    from trainers.datasets import target_accuracy
    from trainers.loop import consistency, first_epoch_at, resolve_device, retrain
    from trainers.precision import resolve_precision

    recipe = replace(recipe, epochs=epochs)
    dev = resolve_device(device)
    goal = target_accuracy(dataset, target)
    data = load_data(dataset, data_dir, dev, val_size=val_size, subset=subset,
                     seed=seed if data_seed is None else data_seed, image_size=image_size, log=print)
    wrong = {k: getattr(spec, k) for k, v in data.io.items() if getattr(spec, k) != v}
    if wrong:
        raise UserError(f"{label} is made for other images ({wrong}); the data has {data.io}")
    full = fit_on == "all"
    images = len(data.train) + len(data.val) if full else len(data.train)
    print(f"training {label}: {count_params(spec):,} params on {images:,} images, "
          f"testing on {len(data.test):,}, {recipe.epochs} epochs, device {dev}")

    def line(stats) -> bool:
        print(f"epoch {stats.epoch:2d}  lr {stats.lr:.4g}  train loss {stats.train_loss:.4f} "
              f"acc {stats.train_acc:6.2f}%  test {stats.acc('test'):6.2f}%  {stats.seconds:5.1f}s", flush=True)
        return False

    t0 = time.perf_counter()
    run = retrain(spec, recipe, data, seed=seed, full=full, report=line, compile=compile, precision=precision)
    wall = time.perf_counter() - t0
    test = run.result.curve("test")
    first = first_epoch_at(test, goal)
    print(f"final test {test[-1]:.2f}%  best {max(test):.2f}%  last-3 min {consistency(test):.2f}%  "
          f"first epoch >= {goal:g}%: {first if first else 'never'}  wall {wall:.0f}s")
    torch.save(run.state_dict, out / "weights.pt")
    (out / "result.json").write_text(json.dumps({
        "spec": spec.to_dict(), "recipe": recipe.to_dict(), "seed": seed, "dataset": dataset,
        "subset": subset, "data_seed": seed if data_seed is None else data_seed, "image_size": image_size,
        "fit_on": fit_on, "train_images": images, "val_size": val_size, "device": str(dev), "precision": resolve_precision(precision, dev.type),
        "command": " ".join(["python -m search"] + sys.argv[1:]),
        "test_acc": test, "wall_seconds": round(wall, 1), **run.result.to_dict(),
    }, indent=1))
    print(f"saved weights and results to {out}")
    return 0
