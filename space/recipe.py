"""The training recipe: everything about how a candidate is trained, none of what it is."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from space.errors import InputError

SCHEDULES = ("step", "onecycle")
OPTIMIZERS = ("sgd", "adam", "adamw")
# Fields added after recipes were first stored: written only when set, so every recipe from before
# them keeps its JSON, and with it the digests that name baselines in a stored study's identity.
LATER_FIELDS = ("erase",)
ONECYCLE_RISE = 0.3  # share of a OneCycle run spent raising the learning rate to its peak (torch's default)


class RecipeError(InputError):
    """A recipe field with a value no training can use; the message names the field."""


@dataclass(frozen=True)
class Recipe:
    epochs: int = 15  # passes over the training set
    batch_size: int = 128  # images per optimizer step
    optimizer: str = "sgd"  # sgd (with momentum), adam, or adamw (decoupled weight decay)
    lr: float = 0.05  # initial (step) or peak (onecycle) learning rate
    momentum: float = 0.9  # SGD momentum, as in every seed notebook; Adam's beta1 stays 0.9
    nesterov: bool = False  # Nesterov momentum (sgd only)
    weight_decay: float = 0.0  # L2 penalty (sgd, adam) or decoupled decay (adamw)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    schedule: str = "step"  # step: StepLR stepped once per epoch; onecycle: per batch
    step_size: int = 8  # StepLR: epochs between decays
    gamma: float = 0.1  # StepLR: decay factor
    rotate: float = 7.0  # augmentation: rotation uniform in [-rotate, rotate] degrees
    scale: float = 0.0  # augmentation: zoom uniform in [1 - scale, 1 + scale]
    translate: float = 0.0  # augmentation: shift uniform in [-t, t] of the image size
    crop_pad: int = 0  # augmentation (natural images): pad by this many pixels, crop back at random
    hflip: float = 0.0  # augmentation: probability of a left-right mirror (data whose labels it keeps)
    erase: float = 0.0  # augmentation: probability of erasing a random rectangle to the data's mean
    ema: float = 0.0  # weight averaging: horizon, in epochs, of a moving average of the weights
    #                   that is evaluated and kept instead of the last step's weights; 0 = off

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            want = {"int": int, "float": (int, float), "bool": bool, "str": str}[str(f.type)]
            if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
                raise RecipeError(f"recipe.{f.name}: expected {f.type}, got {value!r}")
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "optimizer": self.optimizer in OPTIMIZERS,
            "schedule": self.schedule in SCHEDULES,
            "step_size": self.step_size >= 1,
            "gamma": 0 < self.gamma <= 1,
            "rotate": 0 <= self.rotate <= 180,
            "scale": 0 <= self.scale < 1,
            "translate": 0 <= self.translate < 1,
            "crop_pad": 0 <= self.crop_pad <= 16,
            "hflip": 0 <= self.hflip <= 1,
            "erase": 0 <= self.erase <= 1,
            "ema": self.ema >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise RecipeError(f"recipe.{bad[0]}: invalid value {getattr(self, bad[0])!r}")

    def compressed(self, epochs: int) -> Recipe:
        """The same recipe run to its end in `epochs` epochs: OneCycle spans the new length, a
        StepLR step and a weight-averaging horizon keep their share of the run. A search trains
        this cheaper copy; confirmation and refit train the recipe itself."""
        if epochs == self.epochs:
            return self
        share = epochs / self.epochs
        return replace(self, epochs=epochs, step_size=max(1, round(self.step_size * share)),
                       ema=self.ema * share)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in LATER_FIELDS or v != getattr(Recipe, k)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        if not isinstance(d, dict):
            raise RecipeError("recipe: expected a JSON object")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise RecipeError(f"recipe: unknown field(s) {', '.join(unknown)}")
        return cls(**d)
