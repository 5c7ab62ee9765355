"""`bench recipe`: the same designs under each optimizer and schedule, and with a distilling
teacher, several seeds.

    python -m search bench recipe --out studies/recipe-b8000.json --seeds 2
    python -m search bench recipe --budget 4000 --variants sgd-step,sgd-step-kd --seeds 3 --out studies/recipe-b4000.json
    python -m search bench recipe --study mnist-b6000 --trials 3 --variants sgd-onecycle --seeds 3 --out studies/recipe-b6000.json
    python -m search bench recipe --budget 4000 --names seed-000-sep --variants adam-onecycle-ema --seeds 6 --out studies/recipe-b4000-seed-000-sep.json
    python -m search bench recipe --study mnist-b8000 --trials 78 --scale-to 16000 --variants sgd-step --seeds 1

Every (design, recipe, seed) trains for the full epochs on the training split, exactly as
confirmation does (seed = confirmation's seed base + s), and records the validation and test curves.
Only the optimizer, learning rate and schedule (or the teacher's share of the loss) change between
variants; architecture, batch size and augmentation stay the design's own, so a difference is the
recipe's. Two variants refine adam-onecycle (the start points' recipe) by one thing each and are
also compared with it: `-ema` scores a moving average of the weights, `-bs32` trains in batches
of 32, as the public designs at 3,762 and 4,838 params do (in 15 epochs, 4x the steps of 128).
The `-ema` variant also records the last step's weights' final accuracy from the same run: that
training is adam-onecycle's, so it serves as the adam-onecycle run of its seed. The teacher
(trainers/teacher.py) is trained once per data set and stored under --data-dir/teachers.
Validation decides which recipe options the search draws; test is recorded and reported, never
used to choose.
The output file is resumable: runs already in it are not trained again.

With --study, the designs are trials of a recorded study (each with its own recipe), and the
seeds its confirmation already trained are taken from the study as the design's own-recipe runs
("sgd-step") instead of being trained again: confirmation and this bench train the same way.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from search.bench.common import draw_designs
from search.errors import UserError
from space.presets import PRESETS
from space.recipe import Recipe
from space.spec import ArchSpec, Block

if TYPE_CHECKING:  # annotations only: Optuna and the config are imported when a bench runs
    from optuna.trial import FrozenTrial

    from search.config import SearchConfig

SEED_BASE = 1000  # confirmation's seeds, so a run here is one confirmation would make
KD_WEIGHT = 0.5  # sgd-step-kd: half the loss matches the teacher's outputs at temperature 4
# adam-onecycle-ema: a moving average of the weights over about the last two epochs, when
# OneCycle's learning rate has fallen below a tenth of its peak
EMA_EPOCHS = 2.0

# A design with the public designs' end: thin convs, a 1x1 squeeze and a pool, then four 3x3 convs
# of which the last is ten wide and feeds the global average pool directly (no 1x1 head).
HEADLESS = ArchSpec(
    blocks=(Block((8, 16), transition=8, pool=True), Block((12, 16, 16, 10))),
    bn="affine", bn_after_relu=True, dropout=0.05, head="gap",
)


# The augmentation family on one design and its own optimizer and schedule: only the augmentation
# changes ("own" is the design's recipe as it stands, listed as sgd-step). The warp is the digits'
# (the design's own rotation, zoom and shift); a crop pads 2 pixels; a mirror and an erase fire on
# half the images. Mirrors belong only on data whose labels a mirror keeps (not digits).
NO_WARP = dict(rotate=0.0, scale=0.0, translate=0.0)
AUGMENTATIONS = {
    "none": dict(NO_WARP, crop_pad=0, hflip=0.0, erase=0.0),
    "flip": dict(hflip=0.5),
    "flip-erase": dict(hflip=0.5, erase=0.5),
    "crop-flip": dict(NO_WARP, crop_pad=2, hflip=0.5),
    "crop-flip-erase": dict(NO_WARP, crop_pad=2, hflip=0.5, erase=0.5),
}


def designs(budget: int = 8000) -> dict[str, tuple[ArchSpec, Recipe]]:
    """seed-004 (fitted to the budget where it does not fit) and its separable start point, and
    the head-less design where it fits, all with seed-004's recipe; and seed-000's separable start
    point with seed-000's recipe (the frontier's 4,000 runner-up)."""
    from space.count import count_params

    starts = {label: spec for label, spec, _ in draw_designs(0, budget, 15, seed=0, separable=True)}
    _, recipe4 = PRESETS["seed-004"]
    fitted = "seed-004" if "seed-004" in starts else "seed-004 fitted"
    chosen = {fitted.replace(" ", "-"): starts[fitted], "seed-004-sep": starts["seed-004 separable"]}
    if count_params(HEADLESS) <= budget:
        chosen["headless"] = HEADLESS
    picked = {name: (spec, recipe4) for name, spec in chosen.items()}
    return {**picked, "seed-000-sep": (starts["seed-000 separable"], PRESETS["seed-000"][1])}


def scaled_design(t: FrozenTrial, cfg: SearchConfig, budget: int) -> tuple[ArchSpec, Recipe]:
    """A drawn trial's shape and recipe with its widths fitted to another parameter budget, as the
    search fits every draw (the same params, so the same fill; the study's device caps kept): how
    the design scales."""
    import optuna

    from search.store.records import design
    from space.sampling import Infeasible, sample

    spec, recipe = design(t)
    io = dict(in_channels=spec.in_channels, in_size=spec.in_size, num_classes=spec.num_classes)
    try:
        draw = sample(optuna.trial.FixedTrial(t.params), cfg.limits.with_params(budget), cfg.epochs,
                      **cfg.space(), **io)
    except Infeasible as e:
        raise UserError(f"--scale-to {budget}: trial {t.number} has no member there: {e}") from None
    except ValueError as e:  # a start point or baseline outside the drawn family
        raise UserError(f"--scale-to: trial {t.number} is not a draw of its study's space ({e})") from None
    if draw.recipe != recipe:
        raise UserError(f"--scale-to: trial {t.number}'s params no longer draw the recipe it trained")
    return draw.spec, recipe


def study_designs(study: str, storage: str | None, trials: list[int], epochs: int,
                  dataset: str = "mnist", scale_to: int | None = None,
                  ) -> tuple[dict[str, tuple[ArchSpec, Recipe]], list[dict]]:
    """Trials of a recorded study as designs ("trial-N": its spec and recipe), and, where the study
    was made on `dataset`, their confirmation seeds of `epochs` epochs as records of the design's
    own recipe (a confirmation on other data stands in for nothing here). scale_to: each trial's
    shape fitted to that budget instead ("trial-N@B"; nothing of the study's own runs applies)."""
    from search.store.records import confirm_record, design
    from search.store.study import load_existing, study_config, trained_trial

    loaded = load_existing(study, storage)
    cfg = study_config(loaded)
    same_data = cfg.dataset == dataset and scale_to is None
    chosen, confirmed = {}, []
    for number in trials:
        t = trained_trial(loaded, number)
        if scale_to is None:
            name, (spec, recipe) = f"trial-{number}", design(t)
        else:
            name, (spec, recipe) = f"trial-{number}@{scale_to}", scaled_design(t, cfg, scale_to)
        chosen[name] = (spec, recipe)
        c = confirm_record(t) if same_data else {}
        seconds = c.get("train_seconds", [])
        first = c.get("seed_base", SEED_BASE) - SEED_BASE
        for k, (val, test) in enumerate(zip(c.get("val_acc", []), c.get("test_acc", []))):
            if len(val) == epochs:
                confirmed.append({**_record(name, "sgd-step", first + k, spec, recipe, 0.0, val, test,
                                            seconds[k] if k < len(seconds) else None),
                                  "source": f"{study} confirmation"})
    return chosen, confirmed


def _record(name: str, label: str, seed: int, spec: ArchSpec, recipe: Recipe, kd: float, val: list[float],
            test: list[float], wall: float | None, **last_step: float) -> dict:
    """One (design, variant, seed) run as the output file stores it; with weight averaging,
    last_step holds the final val and test accuracy of the last step's weights (last_val, last_test)."""
    from space.count import count_params

    return {"design": name, "recipe_label": label, "seed": seed, "params": count_params(spec), "spec": spec.to_dict(),
            "recipe": recipe.to_dict(), "distill": kd, "val": val, "test": test, "wall": wall, **last_step}


def recipes(base: Recipe) -> dict[str, tuple[Recipe, float]]:
    """The variants, each from the design's own recipe (its batch size and augmentation): label ->
    (recipe, the teacher's share of the loss)."""
    late = max(1, round(base.epochs * 2 / 3))  # the public designs' late drop (10 of 15 epochs)
    return {
        "sgd-step": (base, 0.0),
        "adam-step": (replace(base, optimizer="adam", lr=0.01, step_size=late, gamma=0.1), 0.0),
        "sgd-onecycle": (replace(base, schedule="onecycle", lr=0.1), 0.0),
        "adam-onecycle": (replace(base, optimizer="adam", schedule="onecycle", lr=0.01), 0.0),
        "adam-onecycle-ema": (replace(base, optimizer="adam", schedule="onecycle", lr=0.01, ema=EMA_EPOCHS), 0.0),
        "adam-onecycle-bs32": (replace(base, optimizer="adam", schedule="onecycle", lr=0.01, batch_size=32), 0.0),
        "sgd-step-kd": (base, KD_WEIGHT),
        **{f"aug-{name}": (replace(base, **aug), 0.0) for name, aug in AUGMENTATIONS.items()},
    }


def variant_labels(text: str | None) -> list[str]:
    """--variants: a comma list of recipes()' labels (default: all of them)."""
    known = list(recipes(Recipe()))
    labels = [v.strip() for v in text.split(",") if v.strip()] if text else known
    unknown = [v for v in labels if v not in known]
    if unknown or not labels:
        raise UserError(f"--variants {text!r}: choose from {', '.join(known)}")
    return labels


def trial_numbers(text: str | None) -> list[int]:
    """--trials: a comma list of trial numbers of --study."""
    try:
        numbers = [int(x) for x in (text or "").split(",") if x.strip()]
    except ValueError:
        numbers = []
    if not numbers:
        raise UserError(f"--trials {text!r}: give a comma list of trial numbers of --study, e.g. --trials 3,6")
    return numbers


def _key(rec: dict) -> tuple[str, str, int]:
    return rec["design"], rec["recipe_label"], rec["seed"]


def run(*, out: Path, seeds: int, epochs: int, data_dir: str, device, precision: str = "auto", budget: int = 8000,
        names: list[str] | None = None, variants: list[str] | None = None,
        study: tuple[str, str | None, list[int]] | None = None, scale_to: int | None = None,
        log: Callable[[str], None] = print,
        subset: int | None = None, dataset: str = "mnist") -> list[dict]:
    """Train every (design, variant, seed) not yet in `out`, seed by seed; return all records.
    study=(name, storage, trial numbers): those trials are the designs (see `study_designs`);
    subset: a seeded sample of that many training images (the tests' quick runs)."""
    from trainers import load_data, teacher_for
    from trainers.loop import evaluate, retrain
    from trainers.precision import resolve_precision

    stored = json.loads(out.read_text()) if out.exists() else {}
    records, header = stored.get("records", []), {k: v for k, v in stored.items() if k != "records"}
    have = {_key(r) for r in records}
    if study:
        chosen, confirmed = study_designs(*study, epochs, dataset, scale_to)
        records += [r for r in confirmed if _key(r) not in have and r["seed"] < seeds]
        have = {_key(r) for r in records}
    else:
        chosen = designs(budget)
    chosen = {k: v for k, v in chosen.items() if names is None or k in names}
    # at fewer epochs than the design's own, each recipe is compressed as the search compresses it
    todo = [(s, name, label, spec, r, kd) for s in range(seeds) for name, (spec, base) in chosen.items()
            for label, (r, kd) in recipes(base.compressed(epochs)).items()
            if (variants is None or label in variants) and (name, label, s) not in have]
    if not todo:
        return records
    data = load_data(dataset, data_dir, device, val_size=10_000, subset=subset, log=log)
    teacher = teacher_for(data, Path(data_dir) / "teachers", precision=precision, log=log) \
        if any(kd for *_, kd in todo) else None
    if teacher:
        header["teacher"] = {"params": teacher.params, "val_acc": teacher.val_acc, "seconds": teacher.seconds}
    for k, (s, name, label, spec, recipe, kd) in enumerate(todo, 1):
        t0 = time.perf_counter()
        run_ = retrain(spec, recipe, data, seed=SEED_BASE + s, precision=precision,
                       distill=teacher.distill(kd) if kd else None).result
        last = {}
        if run_.last_step is not None:  # scored as the trainer scores: same precision, same batches
            scored_as = resolve_precision(precision, data.val.x.device.type)
            last = {f"last_{split}": evaluate(run_.last_step, getattr(data, split), (data.mean, data.std), scored_as)[1]
                    for split in ("val", "test")}
        rec = _record(name, label, s, spec, recipe, kd, run_.curve("val"), run_.curve("test"), time.perf_counter() - t0,
                      **last)
        records.append(rec)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**header, "device": str(device), "precision": precision, "records": records},
                                  indent=1))
        log(f"[{k}/{len(todo)}] {name} {label} seed {s}: val {rec['val'][-1]:.2f}% test {rec['test'][-1]:.2f}% "
            f"({rec['wall']:.0f} s)")
    return records


def summary(records: list[dict]) -> str:
    """Per design and variant: final val and test, means over seeds; the seed-matched differences
    from the design's sgd-step runs with their 95% paired t intervals; and, for another schedule, a
    replay of the search's pruner: the epoch at which it would stop each seed ("-": never) with
    the same seed's sgd-step curve as the only finished trial, judged from epoch 2 / from its
    schedule's first judged epoch; and, as the pruner judges it (like with like), with another
    seed of the same variant as the only finished trial."""
    from search.bench.noise import prune_epoch

    def paired(pairs: list[tuple[dict, dict]], split: str) -> str:
        return _paired([r[split][-1] - bar[split][-1] for r, bar in pairs])

    rows = [f"{'design':16} {'variant':14} {'seeds':>5} {'val mean':>8} {'test mean':>9}  "
            f"{'val - sgd-step (paired, 95% CI)':32} {'test - sgd-step':24} pruned at (vs sgd-step: ep 2 / peak; vs own kind)"]
    by = {_key(r): r for r in records}
    for name in dict.fromkeys(r["design"] for r in records):
        for label in dict.fromkeys(r["recipe_label"] for r in records if r["design"] == name):
            runs = [r for r in records if r["design"] == name and r["recipe_label"] == label]
            val = statistics.fmean(r["val"][-1] for r in runs)
            test = statistics.fmean(r["test"][-1] for r in runs)
            pairs = [(r, by[(name, "sgd-step", r["seed"])]) for r in runs if (name, "sgd-step", r["seed"]) in by]
            dv, dt = (paired(pairs, "val"), paired(pairs, "test")) if pairs and label != "sgd-step" else ("", "")
            own = {r["seed"]: runs[(i + 1) % len(runs)] for i, r in enumerate(runs) if len(runs) > 1}
            pruned = " ".join(f"{prune_epoch(bar['val'], r['val']) or '-'}/"
                              f"{prune_epoch(bar['val'], r['val'], schedule=r['recipe']['schedule']) or '-'}/"
                              f"{prune_epoch(own[r['seed']]['val'], r['val'], schedule=r['recipe']['schedule']) or '-' if own else ''}"
                              for r, bar in pairs) if label != "sgd-step" else ""
            rows.append(f"{name:16} {label:14} {len(runs):5} {val:8.3f} {test:9.3f}  {dv:32} {dt:24} {pruned}".rstrip())
    return "\n".join(rows + _against_start_recipe(records))


def _paired(diffs: list[float]) -> str:
    """Mean seed-matched difference and its 95% paired t interval (the mean alone for one pair)."""
    from search.verdict import paired_interval

    mean, lo, hi = paired_interval(diffs)
    return f"{mean:+.3f} ({lo:+.2f}..{hi:+.2f})" if lo == lo else f"{mean:+.3f}"


def _start_recipe_finals(records: list[dict]) -> dict[tuple[str, int], tuple[float, float]]:
    """Final (val, test) per (design, seed) under adam-onecycle: from its own runs, else from the
    last step of an adam-onecycle-ema run, whose training is the same."""
    finals = {(r["design"], r["seed"]): (r["last_val"], r["last_test"])
              for r in records if r["recipe_label"] == "adam-onecycle-ema" and "last_val" in r}
    finals.update({(r["design"], r["seed"]): (r["val"][-1], r["test"][-1])
                   for r in records if r["recipe_label"] == "adam-onecycle"})
    return finals


def _against_start_recipe(records: list[dict]) -> list[str]:
    """The refinements of adam-onecycle (the start points' recipe: weight averaging, a smaller
    batch) against it on the same seeds: means and seed-matched differences with 95% paired t
    intervals."""
    finals = _start_recipe_finals(records)
    refined = [r for r in records if r["recipe_label"].startswith("adam-onecycle-")
               and ("last_val" in r or (r["design"], r["seed"]) in finals)]
    if not refined:
        return []
    rows = ["", f"{'design':16} {'variant':18} {'seeds':>5} {'val / base':>15} {'test / base':>15}  "
                f"{'val - adam-onecycle (95% CI)':29} test - adam-onecycle (95% CI)"]
    for key in dict.fromkeys((r["design"], r["recipe_label"]) for r in refined):
        runs = [r for r in refined if (r["design"], r["recipe_label"]) == key]
        # an averaging run pairs with its own last step: exactly its training, only the scored weights differ
        base = [(r["last_val"], r["last_test"]) if "last_val" in r else finals[(r["design"], r["seed"])] for r in runs]
        cells = [_paired([r[split][-1] - b[i] for r, b in zip(runs, base)]) for i, split in enumerate(("val", "test"))]
        mean = {split: statistics.fmean(r[split][-1] for r in runs) for split in ("val", "test")}
        was = [statistics.fmean(b[i] for b in base) for i in (0, 1)]
        rows.append(f"{key[0]:16} {key[1]:18} {len(runs):5} {mean['val']:7.3f}/{was[0]:7.3f} "
                    f"{mean['test']:7.3f}/{was[1]:7.3f}  {cells[0]:29} {cells[1]}")
    return rows


def design_names(text: str | None, budget: int) -> list[str] | None:
    """--names: a comma list of designs()' names at `budget` (default: all of them)."""
    if not text:
        return None
    known = list(designs(budget))
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names or any(n not in known for n in names):
        raise UserError(f"--names {text!r}: choose from {', '.join(known)}")
    return names


def bench_recipe(*, out: Path | None, seeds: int | None, epochs: int, data_dir: str, device: str,
                 precision: str = "auto", budget: int = 8000, variants: str | None = None,
                 study: str | None = None, storage: str | None = None, trials: str | None = None,
                 names: str | None = None, dataset: str = "mnist", scale_to: int | None = None, **kw) -> int:
    from trainers.loop import resolve_device

    seeds = 2 if seeds is None else seeds
    out = out or Path("studies/recipe.json")
    if kw.get("analyse") is not None:
        records = json.loads(Path(kw["analyse"]).read_text())["records"]
    else:
        if seeds < 1 or epochs < 1:
            raise UserError(f"--seeds and --epochs must be >= 1, got {seeds} and {epochs}")
        labels = variant_labels(variants)
        picked = (study, storage, trial_numbers(trials)) if study else None
        chosen = None if study else design_names(names, budget)
        dev = resolve_device(device)
        if scale_to is not None and not study:
            raise UserError("--scale-to fits the trials of --study to another budget: give --study and --trials")
        what = f"trials {trials} of {study}" if study else f"{len(chosen or designs(budget))} designs at {budget:,}"
        if scale_to is not None:
            what += f", fitted to {scale_to:,} params"
        print(f"recipe: {what} x {len(labels)} variants x {seeds} seeds, "
              f"{epochs} epochs on {dataset}'s 50,000 / 10,000 images, device {dev}; curves -> {out}")
        records = run(out=Path(out), seeds=seeds, epochs=epochs, data_dir=data_dir, device=dev, precision=precision,
                      budget=budget, names=chosen, variants=labels, study=picked, scale_to=scale_to, dataset=dataset)
    print(summary(records))
    return 0
