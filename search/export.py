"""`python -m search export`: a trial's design as files anyone can load.

    studies/mnist-b8000-trial7/
        spec.json     {"spec": ..., "recipe": ..., "normalize": {"mean": .., "std": ..}}
        weights.pt    state_dict: torch.load(path, weights_only=True) + space.build(spec)
        model.ts      TorchScript: torch.jit.load(path), no budgetnas needed
        model.onnx    ONNX (input "image" float [N, 1, 28, 28] normalized, output "logits")
        README.md     the model card

Inputs to model.ts / model.onnx are normalized images: (pixels / 255 - mean) / std.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial

from search.confirm import CONFIRM_SEED_BASE, artifact_dir
from search.designs import rf_table, summary_table
from search.errors import UserError
from search.leaderboard import leaderboard_rows
from search.study import load_existing, study_config, trained_trial, trial_design
from space import ArchSpec, Recipe, build, count_macs, count_params, final_receptive_field
from trainers import DATASETS


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    if number is None:
        rows = leaderboard_rows(study, limit=1)
        if not rows:
            raise UserError(f"study {study.study_name!r} has no completed trial to export")
        number = rows[0]["trial"]
    return trained_trial(study, number)


def confirmed_weights(study: optuna.Study, trial: FrozenTrial) -> dict | None:
    """The seed-0 weights confirmation stored in the artifact store, if any."""
    artifact_id = (trial.user_attrs.get("confirm") or {}).get("weights_artifact")
    store_dir = artifact_dir(study.study_name)
    if not artifact_id or not (store_dir / artifact_id).exists():
        return None
    return torch.load(store_dir / artifact_id, weights_only=True)


def train_weights(study: optuna.Study, spec: ArchSpec, recipe: Recipe, data_dir: str | None, device: str) -> dict:
    from search.run import device_or_error
    from trainers import load_data, train

    cfg = study_config(study)
    data = load_data(cfg.dataset, data_dir or cfg.data_dir, device_or_error(device), val_size=cfg.val_size,
                     subset=cfg.subset, seed=cfg.seed, log=print)
    full = data.full_train()
    print(f"this trial has no confirmed weights: training them now on {len(full):,} images "
          f"({recipe.epochs} epochs, seed {CONFIRM_SEED_BASE})")
    result = train(spec, full, recipe, evals={"test": data.test}, norm=(data.mean, data.std),
                   seed=CONFIRM_SEED_BASE, report=lambda s: print(f"  epoch {s.epoch}: test {s.acc('test'):.2f}%") or False)
    return {k: v.cpu() for k, v in result.model.state_dict().items()}


def write_onnx(model: torch.nn.Module, spec: ArchSpec, path: Path) -> None:
    x = torch.zeros(1, spec.in_channels, spec.in_size, spec.in_size)
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,  # keep params as they are
    )


def model_card(study: optuna.Study, trial: FrozenTrial, spec: ArchSpec, recipe: Recipe, trained_here: bool) -> str:
    cfg = study_config(study)
    c = trial.user_attrs.get("confirm")
    if c:
        acc = (f"{c['test_acc_mean']:.2f}% ± {c['test_acc_std']:.2f} over {c['seeds']} seeds "
               f"(min {c['test_acc_min']:.2f}%, worst of the last 3 epochs {c['consistency']:.2f}%, "
               f"first epoch at >= {c['target']}%: {c['first_epoch_at_target'] or 'never'}); "
               f"trained on {c['train_images']:,} images")
    else:
        acc = "not confirmed (weights trained at export time; see the log of that run)"
    search_cmd = (f"python -m search --budget {cfg.budget} --trials {cfg.trials} --epochs {cfg.epochs} "
                  f"--dataset {cfg.dataset} --study-name {cfg.study_name} --seed {cfg.seed}"
                  + (f" --subset {cfg.subset}" if cfg.subset else ""))
    return f"""# {study.study_name} trial {trial.number}

{count_params(spec):,} parameters (budget {cfg.budget:,}), {count_macs(spec):,} MACs per image,
receptive field {final_receptive_field(spec)} px at the global pool input.

- validation accuracy in the search: {trial.value if trial.value is not None else '-'}%
- test accuracy: {acc}
- weights: {'trained at export time' if trained_here else 'from the confirmation run, seed 0'}

## Use

Inputs are {spec.in_channels}x{spec.in_size}x{spec.in_size} images scaled to [0, 1], then normalized
with mean {DATASETS[cfg.dataset].mean} and std {DATASETS[cfg.dataset].std}. Outputs are {spec.num_classes} logits.

```python
import torch
model = torch.jit.load("model.ts")                      # no budgetnas needed
# or: import onnxruntime; onnxruntime.InferenceSession("model.onnx")
# or: from space import ArchSpec, build; build(spec).load_state_dict(torch.load("weights.pt", weights_only=True))
```

`python -m search predict --model <this folder> image.png` classifies image files.

## Reproduce

```
{search_cmd}
python -m search train --spec spec.json --epochs {recipe.epochs} --seed 0
```

## Recipe

{chr(10).join(f'- {k}: {v}' for k, v in recipe.to_dict().items())}

## Architecture

```
{summary_table(spec)}
```

## Receptive field

```
{rf_table(spec)}
```
"""


def attach(study: optuna.Study, trial: FrozenTrial, files: list[Path]) -> list[str]:
    """Attach exported files to the trial in the artifact store (optuna-dashboard shows them)."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    store_dir = artifact_dir(study.study_name)
    store_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(store_dir))
    return [upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=trial, storage=study._storage)
            for f in files]


def export_trial(a: argparse.Namespace) -> int:
    study = load_existing(a.study, a.storage, annotate=True)
    trial = pick_trial(study, a.trial)
    spec, recipe = trial_design(trial)
    out = Path(a.out) if a.out else Path("studies") / f"{study.study_name}-trial{trial.number}"
    out.mkdir(parents=True, exist_ok=True)
    state = confirmed_weights(study, trial)
    trained_here = state is None
    if state is None:
        state = train_weights(study, spec, recipe, a.data_dir, a.device)
    model = build(spec)
    model.load_state_dict(state)
    model.eval()
    info = DATASETS[study_config(study).dataset]
    (out / "spec.json").write_text(json.dumps({
        "spec": spec.to_dict(), "recipe": recipe.to_dict(), "params": count_params(spec),
        "normalize": {"mean": info.mean, "std": info.std}, "study": study.study_name, "trial": trial.number,
        "confirm": trial.user_attrs.get("confirm"),
    }, indent=1))
    torch.save(model.state_dict(), out / "weights.pt")
    torch.jit.script(model).save(str(out / "model.ts"))
    write_onnx(model, spec, out / "model.onnx")
    (out / "README.md").write_text(model_card(study, trial, spec, recipe, trained_here))
    files = [out / n for n in ("spec.json", "weights.pt", "model.ts", "model.onnx", "README.md")]
    attach(study, trial, files)
    print(f"exported trial {trial.number} ({count_params(spec):,} params) to {out}: "
          + ", ".join(f.name for f in files))
    print(f"attached to the trial; view: optuna-dashboard {shlex.quote(study_config(study).storage)} "
          f"--artifact-dir {artifact_dir(study.study_name)}")
    return 0
