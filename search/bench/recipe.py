"""`bench recipe`: the same designs under each optimizer and schedule, several seeds.

    python -m search bench recipe --out studies/recipe-b8000.json --seeds 2

Every (design, recipe, seed) trains for the full epochs on the training split, exactly as
confirmation does (seed = confirmation's seed base + s), and records the validation and test curves.
Only the optimizer, learning rate and schedule change between recipes; architecture, batch size
and augmentation stay the design's own, so a difference is the recipe's. Validation decides which
recipe options the search draws; test is recorded and reported, never used to choose.
The output file is resumable: runs already in it are not trained again.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from search.errors import UserError
from space.presets import PRESETS
from space.recipe import Recipe
from space.spec import ArchSpec, Block

SEED_BASE = 1000  # confirmation's seeds, so a run here is one confirmation would make

# A design with the public designs' end: thin convs, a 1x1 squeeze and a pool, then four 3x3 convs
# of which the last is ten wide and feeds the global average pool directly (no 1x1 head).
HEADLESS = ArchSpec(
    blocks=(Block((8, 16), transition=8, pool=True), Block((12, 16, 16, 10))),
    bn="affine", bn_after_relu=True, dropout=0.05, head="gap",
)


def designs(budget: int = 8000) -> dict[str, tuple[ArchSpec, Recipe]]:
    """seed-004 and its separable start point (the two strongest designs measured at 8,000), and
    the head-less design, all with seed-004's recipe."""
    from search.bench.fidelity import draw_designs

    starts = {label: spec for label, spec, _ in draw_designs(0, budget, 15, seed=0, separable=True)}
    spec4, recipe4 = PRESETS["seed-004"]
    return {"seed-004": (spec4, recipe4), "seed-004-sep": (starts["seed-004 separable"], recipe4),
            "headless": (HEADLESS, recipe4)}


def recipes(base: Recipe) -> dict[str, Recipe]:
    """The recipe variants, each from the design's own recipe (its batch size and augmentation)."""
    late = max(1, round(base.epochs * 2 / 3))  # the public designs' late drop (10 of 15 epochs)
    return {
        "sgd-step": base,
        "adam-step": replace(base, optimizer="adam", lr=0.01, step_size=late, gamma=0.1),
        "sgd-onecycle": replace(base, schedule="onecycle", lr=0.1),
        "adam-onecycle": replace(base, optimizer="adam", schedule="onecycle", lr=0.01),
    }


def _key(rec: dict) -> tuple[str, str, int]:
    return rec["design"], rec["recipe_label"], rec["seed"]


def run(*, out: Path, seeds: int, epochs: int, data_dir: str, device, precision: str = "auto",
        names: list[str] | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Train every (design, recipe, seed) not yet in `out`, seed by seed; return all records."""
    from space.count import count_params
    from trainers import load_data
    from trainers.loop import retrain

    records = json.loads(out.read_text())["records"] if out.exists() else []
    have = {_key(r) for r in records}
    chosen = {k: v for k, v in designs().items() if names is None or k in names}
    todo = [(s, name, label, spec, r) for s in range(seeds) for name, (spec, base) in chosen.items()
            for label, r in recipes(replace(base, epochs=epochs)).items() if (name, label, s) not in have]
    if not todo:
        return records
    data = load_data("mnist", data_dir, device, val_size=10_000, log=log)
    for k, (s, name, label, spec, recipe) in enumerate(todo, 1):
        t0 = time.perf_counter()
        run_ = retrain(spec, recipe, data, seed=SEED_BASE + s, precision=precision).result
        rec = {"design": name, "recipe_label": label, "seed": s, "params": count_params(spec),
               "spec": spec.to_dict(), "recipe": recipe.to_dict(), "val": run_.curve("val"),
               "test": run_.curve("test"), "wall": time.perf_counter() - t0}
        records.append(rec)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"device": str(device), "precision": precision, "records": records}, indent=1))
        log(f"[{k}/{len(todo)}] {name} {label} seed {s}: val {rec['val'][-1]:.2f}% test {rec['test'][-1]:.2f}% "
            f"({rec['wall']:.0f} s)")
    return records


def summary(records: list[dict]) -> str:
    """Per design and recipe: final val and test, means over seeds; the paired val difference from
    the design's sgd-step runs (same seeds); and a replay of the search's pruner with that sgd-step
    curve as the only finished trial: the epochs at which it would stop each seed ("-": never)."""
    from search.bench.noise import prune_epoch

    rows = ["design        recipe          seeds  val mean  test mean  val - sgd-step (paired)  "
            "pruned at, per seed: judged as StepLR / as its own schedule"]
    by = {_key(r): r for r in records}
    for name in dict.fromkeys(r["design"] for r in records):
        for label in dict.fromkeys(r["recipe_label"] for r in records if r["design"] == name):
            runs = [r for r in records if r["design"] == name and r["recipe_label"] == label]
            val = statistics.fmean(r["val"][-1] for r in runs)
            test = statistics.fmean(r["test"][-1] for r in runs)
            bars = [(r, by.get((name, "sgd-step", r["seed"]))) for r in runs]
            diffs = [r["val"][-1] - bar["val"][-1] for r, bar in bars if bar]
            d = f"{statistics.fmean(diffs):+.3f} over {len(diffs)}" if diffs and label != "sgd-step" else ""
            pruned = " ".join(f"{prune_epoch(bar['val'], r['val']) or '-'}/"
                              f"{prune_epoch(bar['val'], r['val'], schedule=r['recipe']['schedule']) or '-'}"
                              for r, bar in bars if bar) if label != "sgd-step" else ""
            rows.append(f"{name:13} {label:15} {len(runs):5}  {val:8.3f}  {test:9.3f}  {d:23}  {pruned}".rstrip())
    return "\n".join(rows)


def bench_recipe(*, out: Path | None, seeds: int | None, epochs: int, data_dir: str, device: str,
                 precision: str = "auto", **kw) -> int:
    from trainers.loop import resolve_device

    seeds = 2 if seeds is None else seeds
    out = out or Path("studies/recipe.json")
    if kw.get("analyse") is not None:
        records = json.loads(Path(kw["analyse"]).read_text())["records"]
    else:
        if seeds < 1 or epochs < 1:
            raise UserError(f"--seeds and --epochs must be >= 1, got {seeds} and {epochs}")
        dev = resolve_device(device)
        print(f"recipe: {len(designs())} designs x {len(recipes(Recipe()))} recipes x {seeds} seeds, {epochs} "
              f"epochs on 50,000 / 10,000 images, device {dev}; curves -> {out}")
        records = run(out=Path(out), seeds=seeds, epochs=epochs, data_dir=data_dir, device=dev, precision=precision)
    print(summary(records))
    return 0
