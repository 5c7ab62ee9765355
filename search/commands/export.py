"""`python -m search export`: a trial's design as files anyone can load.

    studies/mnist-b8000-trial7/
        spec.json     {"spec": ..., "recipe": ..., "normalize": {"mean": .., "std": ..}}
        weights.pt    state_dict: torch.load(path, weights_only=True) + space.build(spec)
        model.pt2     torch.export program: torch.export.load(path).module(), no budgetnas needed
        model.ts      TorchScript (while torch still has it): torch.jit.load(path)
        model.onnx    ONNX (input "image" float [N, C, H, W] normalized, output "logits")
        README.md     the model card

Inputs to model.pt2 / model.ts / model.onnx are normalized images: (pixels / 255 - mean) / std.
"""

from __future__ import annotations

import json
import shlex
import warnings
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.commands.describe import rf_table, summary_table
from search.errors import UserError
from search.store import records
from search.store.records import CONFIRM_SEED_BASE
from search.store.selection import ranked
from search.store.archive import SCHEME
from search.store.storage import check_writable_dir, open_annotating_storage
from search.store.study import (
    artifact_dir, load_existing, stored_data_facts, study_config, trained_trial, verdict_lines,
)
from space.count import count_macs, count_params, final_receptive_field
from space.model import build
from space.recipe import Recipe
from space.spec import ArchSpec


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """The leaderboard's winner, or trial `number`, which must have completed."""
    if number is None:
        best = ranked(study)
        if not best:
            raise UserError(f"study {study.study_name!r} has no completed trial to export")
        number = best[0].number
    trial = trained_trial(study, number)
    if trial.state != TrialState.COMPLETE:
        raise UserError(f"trial {number} did not complete ({trial.state.name.lower()}); "
                        "export a completed trial (see `python -m search leaderboard`)")
    return trial


def checked_design(study: optuna.Study, trial: FrozenTrial) -> tuple[ArchSpec, Recipe]:
    """The trial's design, re-checked against the study's budget before anything is trained."""
    spec, recipe = records.design(trial)
    budget, params = study_config(study).budget, count_params(spec)
    if params > budget:
        raise UserError(f"trial {trial.number}'s stored spec has {params} params > the study's budget {budget}; "
                        "refusing to train or export it")
    return spec, recipe


# Where stored seed-0 weights come from, best first: the refit (train + val), then confirmation;
# each with the train command's --fit-on that remakes them.
WEIGHT_SOURCES = ((records.refit_record, "all"), (records.confirm_record, "train"))


def stored_weights(trial: FrozenTrial, store_dir: Path) -> tuple[dict, str, str] | None:
    """(state_dict, --fit-on, precision) of the best stored seed-0 weights, or None."""
    for read, fit_on in WEIGHT_SOURCES:
        record = read(trial)
        artifact_id = record.get("weights_artifact")
        if artifact_id and (store_dir / artifact_id).exists():
            return torch.load(store_dir / artifact_id, weights_only=True), fit_on, record.get("precision", "fp32")
    return None


def train_weights(study: optuna.Study, spec: ArchSpec, recipe: Recipe, data_dir: str | None,
                  device: str) -> tuple[dict, str]:
    """Train the weights exactly as confirmation's seed 0 does: training split, seed CONFIRM_SEED_BASE.
    Returns them and the precision they were trained in."""
    from trainers.loop import resolve_device, retrain
    from trainers.precision import resolve_precision

    cfg = study_config(study)
    dev = resolve_device(device)
    precision = resolve_precision(cfg.precision, dev.type)
    from trainers.data import load_data

    data = load_data(**{**cfg.data_args(), "data_dir": data_dir or cfg.data_dir}, device=dev, log=print)
    print(f"this trial has no confirmed weights: training them now as confirmation does, on {len(data.train):,} "
          f"images ({recipe.epochs} epochs, seed {CONFIRM_SEED_BASE}, {precision})")
    run = retrain(spec, recipe, data, seed=CONFIRM_SEED_BASE, precision=precision,
                  report=lambda s: print(f"  epoch {s.epoch}: val {s.acc('val'):.2f}%, test {s.acc('test'):.2f}%") or False)
    return run.state_dict, precision


def write_onnx(model: torch.nn.Module, spec: ArchSpec, path: Path) -> None:
    x = torch.zeros(1, spec.in_channels, spec.in_size, spec.in_size)
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,  # keep params as they are
    )


def write_torch_export(model: torch.nn.Module, spec: ArchSpec, path: Path) -> None:
    """A torch.export program with a dynamic batch size: torch.export.load(path).module()(x)."""
    x = torch.zeros(2, spec.in_channels, spec.in_size, spec.in_size)
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: batch},)), str(path))


def write_torchscript(model: torch.nn.Module, path: Path) -> bool:
    """TorchScript, for as long as this torch has it. torch deprecates it; the choice to still
    write it is ours, so its deprecation warning is not shown to users."""
    if not hasattr(torch.jit, "script"):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(model).save(str(path))
    return True


def reproduce_lines(study: optuna.Study, recipe: Recipe, precision: str, fit_on: str) -> str:
    """The commands that remake the search, and these exact weights (seed 0 of the refit on train +
    val, fit_on="all", or of confirmation on the training split, fit_on="train")."""
    cfg = study_config(study)
    search_cmd = (f"python -m search --budget {cfg.budget} --trials {cfg.trials} --epochs {cfg.epochs} "
                  f"--dataset {cfg.dataset} --study-name {cfg.study_name} --seed {cfg.seed}"
                  + (f" --subset {cfg.subset}" if cfg.subset else ""))
    train_cmd = (f"python -m search train --spec spec.json --fit-on {fit_on} --epochs {recipe.epochs} "
                 f"--seed {CONFIRM_SEED_BASE} --dataset {cfg.dataset} --val-size {cfg.val_size} --precision {precision}"
                 + (f" --subset {cfg.subset} --data-seed {cfg.seed}" if cfg.subset else ""))
    images = "train + val" if fit_on == "all" else "training split"
    return f"{search_cmd}\n{train_cmd}   # these weights: {images}, seed {CONFIRM_SEED_BASE}"


def model_card(study: optuna.Study, trial: FrozenTrial, spec: ArchSpec, recipe: Recipe, trained_here: bool,
               precision: str, fit_on: str) -> str:
    cfg = study_config(study)
    facts = stored_data_facts(study)
    c = records.confirm_record(trial)
    if c:
        acc = (f"{c['test_acc_mean']:.2f}% ± {c['test_acc_std']:.2f} over {c['seeds']} seeds "
               f"(min {c['test_acc_min']:.2f}%, worst of the last 3 epochs {c['consistency']:.2f}%, "
               f"first epoch at >= {c['target']}%: {c['first_epoch_at_target'] or 'never'}); "
               f"validation {c['val_acc_mean']:.2f}% ± {c['val_acc_std']:.2f}; "
               f"trained on {c['train_images']:,} images")
    else:
        acc = "not confirmed (weights trained at export time; see the log of that run)"
    r = records.refit_record(trial)
    refit = (f"{r['test_acc_mean']:.2f}% ± {r['test_acc_std']:.2f} test over {r['seeds']} seeds (min "
             f"{r['test_acc_min']:.2f}%), trained on {r['train_images']:,} images (train + val)") if r else "not refit"
    source = {"all": "from the refit on train + val, seed 0", "train": "from the confirmation run, seed 0"}[fit_on]
    return f"""# {study.study_name} trial {trial.number}

{count_params(spec):,} parameters (budget {cfg.budget:,}), {count_macs(spec):,} MACs per image,
receptive field {final_receptive_field(spec)} px at the global pool input.

- validation accuracy in the search: {trial.value if trial.value is not None else '-'}%
- test accuracy: {acc}
- after the refit: {refit}
- weights: {'trained at export time as confirmation trains seed 0' if trained_here else source}

## Verdict

{chr(10).join(f'- {line}' for line in verdict_lines(study)) or '- none stored (no confirmed baseline to compare with)'}

## Use

Inputs are {spec.in_channels}x{spec.in_size}x{spec.in_size} images scaled to [0, 1], then normalized
with mean {facts["mean"]} and std {facts["std"]} (per channel). Outputs are
{spec.num_classes} logits, for the classes {", ".join(facts["classes"])}.

```python
import torch
model = torch.export.load("model.pt2").module()         # no budgetnas needed
# or: torch.jit.load("model.ts"); onnxruntime.InferenceSession("model.onnx")
# or: from space import ArchSpec, build; build(spec).load_state_dict(torch.load("weights.pt", weights_only=True))
```

`python -m search predict --model <this folder> image.png` classifies image files.

## Reproduce

```
{reproduce_lines(study, recipe, precision, fit_on)}
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


def attach(storage, trial: FrozenTrial, files: list[Path], store_dir: Path) -> list[str]:
    """Attach exported files to the trial in the artifact store (optuna-dashboard shows them)."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    store_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(store_dir))
    return [upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=trial, storage=storage)
            for f in files]


def export_trial(*, study: str, storage: str | None, trial: int | None, out: Path | None,
                 data_dir: str | None, device: str) -> int:
    """Write a trial's files (spec, weights, torch.export, TorchScript, ONNX, card) and attach them."""
    from search.store.storage import default_read_storage

    url = storage or default_read_storage(study)
    annotating = open_annotating_storage(url)
    st = load_existing(study, url, storage=annotating)
    t = pick_trial(st, trial)
    spec, recipe = checked_design(st, t)
    out = Path(out) if out else Path("studies") / f"{st.study_name}-trial{t.number}"
    check_writable_dir(out, "output folder")
    store_dir = artifact_dir(st, url)
    stored = stored_weights(t, store_dir)
    trained_here = stored is None
    if stored is None:
        state, precision = train_weights(st, spec, recipe, data_dir, device)
        fit_on = "train"
    else:
        state, fit_on, precision = stored
    model = build(spec)
    model.load_state_dict(state)
    model.eval()
    facts = stored_data_facts(st)
    (out / "spec.json").write_text(json.dumps({
        "spec": spec.to_dict(), "recipe": recipe.to_dict(), "params": count_params(spec),
        "normalize": {"mean": facts["mean"], "std": facts["std"]}, "classes": facts["classes"],
        "dataset": study_config(st).dataset, "study": st.study_name, "trial": t.number,
        "confirm": records.confirm_record(t) or None, "refit": records.refit_record(t) or None,
    }, indent=1))
    torch.save(model.state_dict(), out / "weights.pt")
    names = ["spec.json", "weights.pt", "model.pt2"]
    write_torch_export(model, spec, out / "model.pt2")
    if write_torchscript(model, out / "model.ts"):
        names.append("model.ts")
    write_onnx(model, spec, out / "model.onnx")
    (out / "README.md").write_text(model_card(st, t, spec, recipe, trained_here, precision, fit_on))
    files = [out / n for n in (*names, "model.onnx", "README.md")]
    print(f"exported trial {t.number} ({count_params(spec):,} params) to {out}: " + ", ".join(f.name for f in files))
    if url.startswith(SCHEME):  # a private copy of the archive: nothing to attach the files to
        return 0
    attach(annotating, t, files, store_dir)
    print(f"attached to the trial; view: optuna-dashboard {shlex.quote(url)} --artifact-dir {store_dir}")
    return 0
