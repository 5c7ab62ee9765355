"""The resolved configuration of one search, stored on the study it created."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Fields that define what the objective measures: a study refuses to be resumed with others.
IDENTITY_FIELDS = ("budget", "dataset", "epochs", "subset", "val_size")


@dataclass(frozen=True)
class SearchConfig:
    budget: int  # hard parameter budget: no candidate with more parameters is ever trained
    trials: int = 100  # finished trials the study should hold (complete or pruned)
    epochs: int = 15  # training epochs per candidate
    dataset: str = "mnist"  # mnist | fashion-mnist
    data_dir: str = "data"  # where the raw files live (torchvision layout)
    study_name: str = ""  # default: <dataset>-b<budget>
    storage: str = ""  # default: sqlite:///studies/<study_name>.db
    sampler: str = "tpe"  # tpe | random
    pruner: str = "median"  # median | hyperband | none
    seed: int = 0  # sampler seed and base training seed
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    timeout: float | None = None  # stop starting new trials after this many seconds
    subset: int | None = None  # train on a seeded sample of this many images (quick runs)
    val_size: int = 10_000  # validation images held out from the end of the training set
    top_k: int = 3  # designs confirmed on the full training set after the search
    confirm_seeds: int = 3  # training seeds per confirmed design
    workers: int = 1  # worker processes on this machine
    max_failures: int = 5  # stop after this many consecutive failed trials
    heartbeat: int = 10  # seconds between heartbeats; a trial silent for 3x this is failed
    baselines: bool = True  # enqueue the seed presets that fit the budget first
    compile: bool = False  # torch.compile each candidate (pays off on GPU, long runs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}


def default_study_name(dataset: str, budget: int) -> str:
    return f"{dataset}-b{budget}"


def default_storage(study_name: str) -> str:
    return f"sqlite:///studies/{study_name}.db"
