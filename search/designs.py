"""One design at a time: pick it (preset, spec file or study trial), describe it, train it."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

from search.errors import UserError
from space import ArchSpec, PRESETS, Recipe, build, count_macs, count_params, receptive_field


def load_design_file(path: Path) -> tuple[ArchSpec, Recipe]:
    """A spec JSON, or an export's {"spec": ..., "recipe": ...}."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and "spec" in data:
        return ArchSpec.from_dict(data["spec"]), Recipe.from_dict(data.get("recipe", {}))
    return ArchSpec.from_dict(data), Recipe()


def design_from_args(a: argparse.Namespace) -> tuple[ArchSpec, Recipe, str]:
    chosen = [x for x in (a.preset, a.spec, getattr(a, "trial", None)) if x is not None]
    if len(chosen) != 1:
        raise UserError("give exactly one of --preset, --spec or --trial")
    if a.preset is not None:
        if a.preset not in PRESETS:
            raise UserError(f"unknown preset {a.preset!r}; choose from {', '.join(PRESETS)}")
        spec, recipe = PRESETS[a.preset]
        return spec, recipe, a.preset
    if a.spec is not None:
        spec, recipe = load_design_file(a.spec)
        return spec, recipe, Path(a.spec).stem
    from search.study import load_existing, trained_trial, trial_design

    study = load_existing(a.study, a.storage)
    spec, recipe = trial_design(trained_trial(study, a.trial))
    return spec, recipe, f"{a.study}-trial{a.trial}"


def summary_table(spec: ArchSpec) -> str:
    from torchsummary import summary

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(build(spec), (spec.in_channels, spec.in_size, spec.in_size), device="cpu")
    return buf.getvalue().rstrip()


def rf_table(spec: ArchSpec) -> str:
    lines = [f"{'layer':<11} {'input':>10} {'output':>10} {'RF':>4} {'jump':>4}", "-" * 43]
    for r in receptive_field(spec):
        lines.append(f"{r.layer:<11} {f'{r.size_in}x{r.size_in}x{r.channels_in}':>10} "
                     f"{f'{r.size_out}x{r.size_out}x{r.channels_out}':>10} {r.rf:>4} {r.jump:>4}")
    return "\n".join(lines)


def describe_design(spec: ArchSpec, recipe: Recipe | None, label: str) -> str:
    parts = [f"design {label} (digest {spec.digest()})", summary_table(spec), "", "receptive field", rf_table(spec), "",
             f"params: {count_params(spec):,}", f"MACs:   {count_macs(spec):,} per image"]
    if recipe is not None:
        parts.append("recipe: " + ", ".join(f"{k}={v}" for k, v in recipe.to_dict().items()))
    return "\n".join(parts)


def train_design(spec: ArchSpec, recipe: Recipe, label: str, a: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from search.run import device_or_error
    from trainers import consistency, first_epoch_at, load_data, train

    if a.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {a.epochs}")
    recipe = replace(recipe, epochs=a.epochs)
    device = device_or_error(a.device)
    data = load_data(a.dataset, a.data_dir, device, subset=a.subset, seed=a.seed, log=print)
    full = data.full_train()
    print(f"training {label}: {count_params(spec):,} params on {len(full):,} images, "
          f"testing on {len(data.test):,}, {recipe.epochs} epochs, device {device}")

    def line(stats) -> bool:
        print(f"epoch {stats.epoch:2d}  lr {stats.lr:.4g}  train loss {stats.train_loss:.4f} "
              f"acc {stats.train_acc:6.2f}%  test {stats.acc('test'):6.2f}%  {stats.seconds:5.1f}s", flush=True)
        return False

    t0 = time.perf_counter()
    result = train(spec, full, recipe, evals={"test": data.test}, norm=(data.mean, data.std),
                   seed=a.seed, report=line, compile=a.compile)
    wall = time.perf_counter() - t0
    test = result.curve("test")
    first = first_epoch_at(test, 99.4)
    print(f"final test {test[-1]:.2f}%  best {max(test):.2f}%  last-3 min {consistency(test):.2f}%  "
          f"first epoch >= 99.4%: {first if first else 'never'}  wall {wall:.0f}s")
    out = Path(a.out) if a.out else Path("studies") / f"train-{label}"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in result.model.state_dict().items()}, out / "weights.pt")
    (out / "result.json").write_text(json.dumps({
        "spec": spec.to_dict(), "recipe": recipe.to_dict(), "seed": a.seed, "dataset": a.dataset,
        "subset": a.subset, "device": str(device), "command": " ".join(["python -m search"] + sys.argv[1:]),
        "test_acc": test, "wall_seconds": round(wall, 1), **result.to_dict(),
    }, indent=1))
    print(f"saved weights and results to {out}")
    return 0
