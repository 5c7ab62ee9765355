"""The model card (README.md of an export): what the model is, what it costs, how accurate it is
as deployed, how to use it and how to remake it."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from search.commands import int8
from search.commands.describe import rf_table, summary_table
from search.commands.int8 import Measured
from search.store import records
from search.store.records import CONFIRM_SEED_BASE
from search.store.study import stored_data_facts, study_config, verdict_lines
from space.budget import Budget, kb
from space.count import count_macs, count_params, count_ram, final_receptive_field
from space.recipe import Recipe
from space.spec import ArchSpec


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


def costs_line(spec: ArchSpec, budget: Budget | None = None) -> str:
    ram = count_ram(spec)
    return (f"{count_params(spec):,} parameters{f' (budget {budget})' if budget else ''}, {count_macs(spec):,} MACs per "
            f"image, peak activation memory of an int8 inference {ram:,} bytes ({kb(ram)}: the largest input + output "
            f"of any conv or pool), receptive field {final_receptive_field(spec)} px at the global pool input.")


def deployed_section(m: Measured | None) -> str:
    """Both ONNX models' test accuracy as onnxruntime runs them, their sizes, and the int8 loss."""
    if m is None:
        return f"## As deployed\n\nNo int8 model: {int8.available()}.\n"
    loss = (f"**int8 loses {m.loss:.2f} points, more than {int8.NOTABLE_LOSS}**: ship the float32 model where that "
            "matters (RESULTS.md, \"int8: 7-bit weights\", shows how the quantization settings moved such losses)."
            if m.loss > int8.NOTABLE_LOSS else
            f"int8 {'loses' if m.loss > 0 else 'gains'} {abs(m.loss):.2f} points (within {int8.NOTABLE_LOSS}).")
    return f"""## As deployed

Test accuracy measured by {m.runtime} on the {m.images:,} test images (it chose nothing):

| model | file | bytes | test accuracy |
|---|---|---:|---:|
| float32 | model.onnx | {m.float32_bytes:,} | {m.float32:.2f}% |
| int8: static, per-channel 7-bit weights, activations calibrated on {m.calibration_images:,} training images | {int8.INT8_FILE} | {m.int8_bytes:,} | {m.int8:.2f}% |

{loss}
"""


def use_section(spec: ArchSpec, facts: dict) -> str:
    return f"""## Use

Inputs are {spec.in_channels}x{spec.in_size}x{spec.in_size} images scaled to [0, 1], then normalized
with mean {facts["mean"]} and std {facts["std"]} (per channel). Outputs are
{spec.num_classes} logits, for the classes {", ".join(facts["classes"])}.

```python
import torch
model = torch.export.load("model.pt2").module()         # no budgetnas needed
# or: torch.jit.load("model.ts"); onnxruntime.InferenceSession("model.onnx") (or "{int8.INT8_FILE}")
# or: from space import ArchSpec, build; build(spec).load_state_dict(torch.load("weights.pt", weights_only=True))
```

`python -m search predict --model <this folder> image.png` classifies image files (`--int8`: with the
int8 model, in onnxruntime).
"""


def design_sections(spec: ArchSpec, recipe: Recipe) -> str:
    return f"""## Recipe

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


def model_card(study: optuna.Study, trial: FrozenTrial, spec: ArchSpec, recipe: Recipe, trained_here: bool,
               precision: str, fit_on: str, measured: Measured | None) -> str:
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

{costs_line(spec, cfg.limits)}

- validation accuracy in the search: {trial.value if trial.value is not None else '-'}%
- test accuracy: {acc}
- after the refit: {refit}
- weights: {'trained at export time as confirmation trains seed 0' if trained_here else source}

## Verdict

{chr(10).join(f'- {line}' for line in verdict_lines(study)) or '- none stored (fewer than two confirmed designs to compare)'}

{deployed_section(measured)}
{use_section(spec, facts)}
## Reproduce

```
{reproduce_lines(study, recipe, precision, fit_on)}
```

{design_sections(spec, recipe)}"""


def retrain_line(result: dict, recipe: Recipe) -> str:
    """The train command that remakes these weights from this folder's spec.json (which holds the
    design and recipe the run trained, wherever its own spec came from)."""
    subset = (f" --subset {result['subset']} --data-seed {result.get('data_seed', result['seed'])}"
              if result.get("subset") else "")
    return (f"python -m search train --spec spec.json --fit-on {result.get('fit_on', 'all')} --epochs {recipe.epochs} "
            f"--seed {result['seed']} --dataset {result['dataset']} --val-size {result.get('val_size', 10_000)} "
            f"--precision {result.get('precision', 'fp32')}{subset} --out <that folder>")


def trained_card(title: str, spec: ArchSpec, recipe: Recipe, result: dict, facts: dict,
                 measured: Measured | None) -> str:
    """The card of a design trained by `python -m search train` (no study behind it)."""
    images = "train + val" if result.get("fit_on") == "all" else "the training split"
    count = f"{result['train_images']:,} images" if result.get("train_images") else f"a subset of {result.get('subset')}"
    test = result.get("test_acc") or []
    return f"""# {title}

{costs_line(spec)}

- weights: trained on {images} ({count}), seed {result["seed"]}, {recipe.epochs} epochs,
  {result.get("precision", "fp32")}; test accuracy after the last epoch in PyTorch: {f"{test[-1]:.2f}%" if test else "-"}

{deployed_section(measured)}
{use_section(spec, facts)}
## Reproduce

```
{retrain_line(result, recipe)}
python -m search export --trained <that folder> --out <this folder>
```

{design_sections(spec, recipe)}"""
