"""`python -m search export`: a trial's design as files anyone can load.

    studies/mnist-b8000-trial7/
        spec.json     {"spec": ..., "recipe": ..., "normalize": {"mean": .., "std": ..}}
        weights.pt    state_dict: torch.load(path, weights_only=True) + space.build(spec)
        model.pt2     torch.export program: torch.export.load(path).module(), no budgetnas needed
        model.ts      TorchScript (while torch still has it): torch.jit.load(path)
        model.onnx    ONNX (input "image" float [N, C, H, W] normalized, output "logits")
        model-int8.onnx  the same, statically quantized to int8 (search/commands/int8.py)
        README.md     the model card, with both ONNX models' test accuracy measured by onnxruntime

Inputs to model.pt2 / model.ts / the ONNX models are normalized images: (pixels / 255 - mean) / std.
A study's trial is exported with `--study`; a design trained by `python -m search train` with
`--trained FOLDER` (the zoo's models are made so).
"""

from __future__ import annotations

import json
import shlex
import warnings
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.commands import int8
from search.commands.card import model_card, trained_card
from search.commands.int8 import Measured
from search.errors import UserError
from search.store import records
from search.store.records import CONFIRM_SEED_BASE
from search.store.selection import ranked
from search.store.paths import SCHEME, read_storage
from search.store.storage import check_writable_dir, open_annotating_storage
from search.store.study import (
    artifact_dir, load_existing, stored_data_facts, study_config, trained_trial,
)
from space.count import count_macs, count_params, count_ram
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
    over = study_config(study).limits.over(spec)
    if over:
        raise UserError(f"trial {trial.number}'s stored spec has {'; '.join(over)} (the study's budget); "
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


def train_weights(study: optuna.Study, spec: ArchSpec, recipe: Recipe, data) -> tuple[dict, str]:
    """Train the weights exactly as confirmation's seed 0 does: training split, seed CONFIRM_SEED_BASE.
    Returns them and the precision they were trained in."""
    from trainers.loop import retrain
    from trainers.precision import resolve_precision

    precision = resolve_precision(study_config(study).precision, data.train.x.device.type)
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


def attach(storage, trial: FrozenTrial, files: list[Path], store_dir: Path) -> list[str]:
    """Attach exported files to the trial in the artifact store (optuna-dashboard shows them)."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    store_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(store_dir))
    return [upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=trial, storage=storage)
            for f in files]


def load_export_data(data_args: dict, data_dir: str | None, device: str = "cpu", whole: bool = True):
    """The data the design was made with. whole=True: every test image to measure on (a study made
    on a --subset measured on a sample), training images to calibrate on; whole=False: as the
    study saw it, to train on."""
    from trainers.data import load_data
    from trainers.loop import resolve_device

    args = {**data_args, "data_dir": data_dir or data_args["data_dir"], **({"subset": None} if whole else {})}
    return load_data(**args, device=resolve_device(device), log=print)


def write_models(model: torch.nn.Module, spec: ArchSpec, out: Path, data, norm: dict) -> tuple[list[str], Measured | None]:
    """weights.pt, model.pt2, model.ts, model.onnx and model-int8.onnx in `out`; the ONNX models'
    test accuracy (None without onnxruntime's quantization tools, said on one line)."""
    model.eval()
    torch.save(model.state_dict(), out / "weights.pt")
    names = ["weights.pt", "model.pt2"]
    write_torch_export(model, spec, out / "model.pt2")
    if write_torchscript(model, out / "model.ts"):
        names.append("model.ts")
    write_onnx(model, spec, out / "model.onnx")
    names.append("model.onnx")
    missing = int8.available()
    if missing:
        print(f"no int8 model: {missing}")
        return names, None
    measured = int8.quantize_and_measure(model, spec, out, data.train.x, data.test.x, data.test.y,
                                         norm["mean"], norm["std"])
    print(f"test accuracy in {measured.runtime} on {measured.images:,} images: float32 {measured.float32:.2f}%, "
          f"int8 {measured.int8:.2f}% ({measured.int8_bytes:,} bytes)")
    return names + [int8.INT8_FILE], measured


def design_meta(spec: ArchSpec, recipe: Recipe, facts: dict, dataset: str, measured: Measured | None) -> dict:
    """spec.json's keys every export has (predict reads spec, normalize, classes, dataset)."""
    return {"spec": spec.to_dict(), "recipe": recipe.to_dict(), "params": count_params(spec), "macs": count_macs(spec),
            "ram": count_ram(spec), "normalize": {"mean": facts["mean"], "std": facts["std"]},
            "classes": facts["classes"], "dataset": dataset, "deployed": measured.to_dict() if measured else None}


def export_trial(*, study: str, storage: str | None, trial: int | None, out: Path | None,
                 data_dir: str | None, device: str) -> int:
    """Write a trial's files (spec, weights, torch.export, TorchScript, ONNX float32 and int8, card)
    and attach them."""

    url = storage or read_storage(study)
    annotating = open_annotating_storage(url)
    st = load_existing(study, url, storage=annotating)
    t = pick_trial(st, trial)
    spec, recipe = checked_design(st, t)
    out = Path(out) if out else Path("studies") / f"{st.study_name}-trial{t.number}"
    check_writable_dir(out, "output folder")
    store_dir = artifact_dir(st, url)
    stored = stored_weights(t, store_dir)
    trained_here = stored is None
    cfg = study_config(st)
    if stored is None:
        state, precision = train_weights(st, spec, recipe, load_export_data(cfg.data_args(), data_dir, device, whole=False))
        fit_on = "train"
    else:
        state, fit_on, precision = stored
    model = build(spec)
    model.load_state_dict(state)
    facts = stored_data_facts(st)
    names, measured = write_models(model, spec, out, load_export_data(cfg.data_args(), data_dir), facts)
    (out / "spec.json").write_text(json.dumps({
        **design_meta(spec, recipe, facts, cfg.dataset, measured), "study": st.study_name, "trial": t.number,
        "confirm": records.confirm_record(t) or None, "refit": records.refit_record(t) or None,
    }, indent=1))
    (out / "README.md").write_text(model_card(st, t, spec, recipe, trained_here, precision, fit_on, measured))
    files = [out / n for n in ("spec.json", *names, "README.md")]
    print(f"exported trial {t.number} ({count_params(spec):,} params) to {out}: " + ", ".join(f.name for f in files))
    if url.startswith(SCHEME):  # a private copy of the archive: nothing to attach the files to
        return 0
    attach(annotating, t, files, store_dir)
    print(f"attached to the trial; view: optuna-dashboard {shlex.quote(url)} --artifact-dir {store_dir}")
    return 0


def export_trained(folder: Path, out: Path | None, data_dir: str | None) -> int:
    """Export what `python -m search train` saved in `folder` (result.json and weights.pt)."""
    from search.config import SearchConfig

    folder = Path(folder)
    try:
        result = json.loads((folder / "result.json").read_text())
        state = torch.load(folder / "weights.pt", weights_only=True)
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"{folder} is not a train output folder (no result.json and weights.pt); "
                        "run `python -m search train ... --out FOLDER` first") from None
    except (json.JSONDecodeError, RuntimeError) as e:
        raise UserError(f"{folder}: unreadable training output ({type(e).__name__})") from None
    spec, recipe = ArchSpec.from_dict(result["spec"]), Recipe.from_dict(result["recipe"])
    out = Path(out) if out else Path("studies") / f"{folder.name}-export"
    check_writable_dir(out, "output folder")
    data_args = SearchConfig(budget=count_params(spec), dataset=result["dataset"], subset=result.get("subset"),
                             val_size=result.get("val_size", 10_000), image_size=result.get("image_size"),
                             seed=result.get("data_seed", result["seed"])).data_args()
    data = load_export_data(data_args, data_dir)
    model = build(spec)
    model.load_state_dict(state)
    facts = {"mean": list(data.mean), "std": list(data.std), "classes": list(data.classes)}
    if not result.get("train_images") and not result.get("subset"):  # saved before train recorded it
        result["train_images"] = len(data.train) + (len(data.val) if result.get("fit_on", "all") == "all" else 0)
    names, measured = write_models(model, spec, out, data, facts)
    (out / "spec.json").write_text(json.dumps({**design_meta(spec, recipe, facts, result["dataset"], measured),
                                               "trained": {k: result.get(k) for k in TRAINED_KEYS}}, indent=1))
    (out / "README.md").write_text(trained_card(out.name, spec, recipe, result, facts, measured))
    files = [out / n for n in ("spec.json", *names, "README.md")]
    print(f"exported {folder} ({count_params(spec):,} params) to {out}: " + ", ".join(f.name for f in files))
    return 0


# what an export of a trained design keeps of its training run
TRAINED_KEYS = ("command", "seed", "data_seed", "fit_on", "train_images", "subset", "val_size", "precision", "device", "wall_seconds")
