"""The teacher of knowledge distillation: a wider network, trained once per data set, whose
logits for every training image are kept (trainers/distill.py turns them into the loss term).

    teacher = teacher_for(data, Path("data/teachers"))          # trained on first use, then read back
    train(spec, data.train, recipe, ..., distill=teacher.distill(weight=0.5))
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from space.count import count_params
from space.recipe import Recipe
from space.spec import ArchSpec, Block
from trainers.distill import Distill
from trainers.loop import logits_of, train

if TYPE_CHECKING:
    from trainers.data import DeviceData

# About 42,000 params (five times the largest budget users ask for): padded 3x3 stacks at 16-32-32
# with two pools, then one 64-wide conv. Wide enough to beat every student, cheap enough to train
# once on a CPU in minutes.
TEACHER = ArchSpec(
    blocks=(Block((16, 32), padding=1, pool=True), Block((32, 32), padding=1, pool=True), Block((64,))),
    bn="affine", dropout=0.05,
)
TEACHER_RECIPE = Recipe(epochs=15, batch_size=128, lr=0.05, step_size=8, gamma=0.1, rotate=7.0, scale=0.1,
                        translate=0.1)


@dataclass(frozen=True)
class Teacher:
    train_logits: torch.Tensor  # [len(train), classes], row i for training image i
    val_logits: torch.Tensor  # [len(val), classes]
    val_acc: float  # the teacher's own validation accuracy, %
    seconds: float  # what training it cost, once per data set
    params: int
    path: Path

    def distill(self, weight: float = 0.5, temp: float = 4.0, full: bool = False) -> Distill:
        """The loss term for a student fit on the training split, or on train + val with full=True
        (the refit): the rows follow DeviceData.full_train's order."""
        logits = torch.cat([self.train_logits, self.val_logits]) if full else self.train_logits
        return Distill(logits, weight, temp)


def fingerprint(data: DeviceData) -> str:
    """What the teacher depends on: the training and validation images and labels, and its own design."""
    h = hashlib.sha256()
    for t in (data.train.x, data.train.y, data.val.x, data.val.y):
        h.update(t.cpu().numpy().tobytes())
    h.update(TEACHER.to_json().encode() + TEACHER_RECIPE.to_json().encode())
    return h.hexdigest()[:16]


def teacher_for(data: DeviceData, cache_dir: Path, *, precision: str = "auto", seed: int = 0,
                log: Callable[[str], None] = print) -> Teacher:
    """The data set's teacher: read from `cache_dir` when this exact data trained one before,
    else trained on the training split (validation is only measured) and stored there."""
    spec = ArchSpec.from_dict({**TEACHER.to_dict(), **data.io})
    path = Path(cache_dir) / f"teacher-{data.name.replace(':', '_').replace('/', '_')[-40:]}-{fingerprint(data)}.pt"
    device = data.train.x.device
    if path.exists():
        saved = torch.load(path, map_location=device, weights_only=True)
        log(f"teacher: {path} ({saved['params']:,} params, val {saved['val_acc']:.2f}%, trained once in {saved['seconds']:.0f}s)")
    else:
        log(f"teacher: training {count_params(spec):,} params for {TEACHER_RECIPE.epochs} epochs on "
            f"{len(data.train):,} images (once per data set) -> {path}")
        t0 = time.perf_counter()
        norm, epochs = (data.mean, data.std), TEACHER_RECIPE.epochs
        result = train(spec, data.train, TEACHER_RECIPE, evals={"val": data.val}, norm=norm, seed=seed,
                       precision=precision,
                       report=lambda st: log(f"teacher: epoch {st.epoch}/{epochs} val {st.val_acc:.2f}%") or False)
        saved = {"train_logits": logits_of(result.model, data.train, norm, precision).cpu(),
                 "val_logits": logits_of(result.model, data.val, norm, precision).cpu(),
                 "val_acc": result.epochs[-1].val_acc, "seconds": time.perf_counter() - t0,
                 "params": count_params(spec), "spec": spec.to_json(),
                 "state": {k: v.detach().cpu() for k, v in result.model.state_dict().items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(saved, path)
        log(f"teacher: val {saved['val_acc']:.2f}% after {saved['seconds']:.0f}s")
    return Teacher(saved["train_logits"].to(device).float(), saved["val_logits"].to(device).float(),
                   float(saved["val_acc"]), float(saved["seconds"]), int(saved["params"]), path)
