"""The resolved configuration of one search, stored on the study it created."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from search.errors import UserError
from search.store.paths import SCHEME, search_storages
from space.budget import KB, Budget, kb
from space.count import family_min_macs, family_min_params, family_min_ram
from space.sampling import AUGMENTS, DIGITS
from trainers.datasets import DATASETS, USER_DATA, mirror_keeps_label
from trainers.precision import PRECISIONS

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
REFITS = ("winner", "all", "none")

# Fields that define what the objective measures: a study refuses to be resumed with others.
IDENTITY_FIELDS = ("budget", "max_macs", "max_ram", "dataset", "epochs", "search_epochs", "subset", "val_size", "separable",
                   "baseline_keys", "image_size", "headless", "recipes", "mirror")
RECIPES = ("sgd-step", "all")

# The epochs a search trial trains by default, with the pruner and top k that go with them: what
# `bench proxy --analyse studies/proxy-b8000.json,studies/proxy-b4000.json` finds cheapest, search
# and confirmation's first round together, among the lengths that keep the 15-epoch top 2 among
# the confirmed in >= 90% of bootstrap orders at both budgets (studies/RESULTS.md, "Search
# fidelity"): 2 epochs, unpruned, the top 3 confirmed.
SEARCH_EPOCHS: int | None = 2


@dataclass(frozen=True)
class SearchConfig:
    budget: int  # hard parameter budget: no candidate with more parameters is ever trained
    max_macs: int | None = None  # hard cap on multiply-accumulates per image (space.count.count_macs)
    max_ram: int | None = None  # hard cap on peak int8 activation memory, bytes (space.count.count_ram)
    trials: int = 100  # finished trials the study should hold (complete or pruned)
    epochs: int = 15  # the protocol: epochs of the recipe every confirmed and refit design trains
    search_epochs: int | None = None  # epochs a search trial trains: its recipe compressed to this
    #                                   length (Recipe.compressed); None: the protocol's --epochs.
    #                                   The CLI's default is SEARCH_EPOCHS (default_search_epochs)
    dataset: str = "mnist"  # mnist | fashion-mnist | cifar10 | folder:PATH | npz:PATH
    data_dir: str = "data"  # where the raw files live (torchvision layout)
    study_name: str = ""  # default: <dataset>-b<budget>
    storage: str = ""  # default: sqlite:///studies/<study_name>.db (search.store.paths)
    archive: str = ""  # the study's archive (an Optuna journal file), restored from and kept current;
    #                    only where --storage journal:PATH names one ("": none)
    sampler: str = "tpe"  # tpe | random
    pruner: str = "median"  # median | hyperband | none. The CLI's default is default_pruner: none for
    #                         trials shorter than --epochs, median for trials of the whole protocol
    seed: int = 0  # sampler seed and base training seed
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    timeout: float | None = None  # stop starting trials once the study has searched this long (all runs)
    subset: int | None = None  # train on a seeded sample of this many images (quick runs)
    val_size: int = 10_000  # validation images held out from the training set (your data: at most a fifth)
    image_size: int | None = None  # resize every image to this on load (folders of mixed sizes)
    top_k: int = 3  # best searched designs confirmed after the search (finished baselines are, besides);
    #                 at 4,000 even a second 15-epoch seed keeps the top 2 within a top 2 in 57% of orders
    confirm_seeds: int = 3  # first-round seeds per confirmed design (and the refit's seeds)
    confirm_cap: int = 0  # most seeds the confirmation race gives one design; 0: twice confirm_seeds
    refit: str = "winner"  # retrained on train + val after confirmation: winner (+ baselines) | all | none
    workers: int = 1  # worker processes on this machine
    max_failures: int = 5  # stop after this many consecutive failed trials
    heartbeat: int = 10  # seconds between heartbeats; a trial silent for 3x this is failed
    baselines: bool = True  # enqueue the seed presets first (as drawn where they fit, else fitted)
    baseline: tuple[str, ...] = ()  # --baseline values as given: preset names or design files
    baseline_keys: tuple[str, ...] = ()  # what those baselines train (label:spec digest:recipe hash)
    compile: bool = False  # torch.compile each candidate (pays off on GPU, long runs)
    precision: str = "auto"  # auto | fp32 | bf16 (auto: bf16 on CPUs with native bf16; fp32 on CUDA)
    target: float | None = None  # accuracy target (%) for "first epoch at target"; None: the data set's
    separable: bool = True  # also draw depthwise-separable blocks (depthwise 3x3 + pointwise 1x1)
    headless: bool = False  # also draw the head-less end: the last 3x3 conv to the classes, then GAP
    recipes: str = "all"  # all: draw optimizer, schedule, smoothing too; sgd-step: only the seeds' SGD + StepLR
    mirror: bool = False  # a left-right mirror keeps the labels, so the search draws it: the built-in data
    #                       sets say (trainers.datasets.mirror_keeps_label); your own data: --mirror

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        # studies stored before a field existed drew from the space without it
        values = {"separable": False, "headless": False, "recipes": "sgd-step",
                  "mirror": mirror_keeps_label(d.get("dataset", "mnist")),
                  **{k: v for k, v in d.items() if k in cls.__dataclass_fields__}}
        for k in ("baseline", "baseline_keys"):  # JSON gives lists back
            values[k] = tuple(values.get(k) or ())
        return cls(**values)

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> SearchConfig:
        """Every field from the parsed option of the same name; the defaults that need the others."""
        values = {f.name: getattr(a, f.name) for f in fields(cls) if hasattr(a, f.name)}
        values["baselines"] = not a.no_baselines
        values["baseline"] = tuple(a.baseline or ())  # baseline_keys: search.baselines.with_keys
        values["max_macs"] = parse_count("--max-macs", a.max_macs, "MACs", 1)
        values["max_ram"] = parse_count("--max-ram", a.max_ram, "KB", KB)
        values["dataset"] = absolute_dataset(a.dataset)
        values["mirror"] = check_mirror(values["dataset"], bool(getattr(a, "mirror", False)))
        values["study_name"] = a.study_name or default_study_name(values["dataset"], a.budget, values["max_macs"],
                                                                  values["max_ram"])
        values["storage"], values["archive"] = search_storages(a.storage, values["study_name"])
        values["search_epochs"] = default_search_epochs(getattr(a, "search_epochs", None), a.epochs)
        values["pruner"] = default_pruner(getattr(a, "pruner", None), values["search_epochs"], a.epochs)
        return cls(**values)

    @property
    def limits(self) -> Budget:
        """Every hard cap a candidate must fit: parameters, and the device caps given."""
        return Budget(self.budget, self.max_macs, self.max_ram)

    @property
    def race_cap(self) -> int:
        """Most seeds the confirmation race gives one design (--confirm-cap, 0: twice the first round)."""
        return max(self.confirm_cap or 2 * self.confirm_seeds, self.confirm_seeds)

    @property
    def trial_epochs(self) -> int:
        """Epochs one trial of the search trains (and the pruner judges it over)."""
        return self.search_epochs or self.epochs

    def data_args(self) -> dict[str, Any]:
        """trainers.data.load_data's arguments for the data this study was made with (data set,
        split, subset, seed): load_data(**cfg.data_args(), device=..., log=...)."""
        return dict(name=self.dataset, data_dir=self.data_dir, val_size=self.val_size, subset=self.subset,
                    seed=self.seed, image_size=self.image_size)

    def space(self) -> dict[str, Any]:
        """space.sample's switches for this study's space."""
        return dict(separable=self.separable, headless=self.headless, recipes=self.recipes == "all",
                    augment=augment_kinds(self.dataset), mirror=self.mirror)

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}


def augment_kinds(dataset: str) -> tuple[str, ...]:
    """The augmentation kinds a search on `dataset` draws: MNIST the digits' warp alone, as every
    recorded MNIST study drew; every other data set the whole family (space.sampling.AUGMENTS)."""
    return DIGITS if dataset == "mnist" else AUGMENTS


def frontier_configs(a: argparse.Namespace) -> list[SearchConfig]:
    """One config per --budgets entry: the same options, the study <name>-b<budget>."""
    folder = a.storage.removeprefix(SCHEME) if a.storage and a.storage.startswith(SCHEME) else None
    if folder is not None and len(a.budgets) > 1 and not (folder.endswith("/") or Path(folder).is_dir()):
        raise UserError(f"--storage {a.storage}: an archive holds one study; with several budgets name a folder "
                        f"(journal:DIR/), which keeps one archive per budget, DIR/<study>.jsonl")
    out = []
    for budget in a.budgets:
        name = f"{a.study_name}-b{budget}" if a.study_name else None  # None: from_args's default name
        cfg = SearchConfig.from_args(argparse.Namespace(**{**vars(a), "budget": budget, "study_name": name}))
        if folder is not None and len(a.budgets) > 1:  # the folder keeps each budget's study in its own archive
            storage, archive = search_storages(f"{SCHEME}{Path(folder) / cfg.study_name}.jsonl", cfg.study_name)
            cfg = replace(cfg, storage=storage, archive=archive)
        out.append(cfg)
    return out


def default_search_epochs(given: int | None, epochs: int) -> int | None:
    """--search-epochs as given; else SEARCH_EPOCHS where the protocol is longer, and the whole
    protocol (None) where it is not."""
    if given is not None:
        return given
    return SEARCH_EPOCHS if SEARCH_EPOCHS is not None and SEARCH_EPOCHS < epochs else None


def default_pruner(given: str | None, search_epochs: int | None, epochs: int) -> str:
    """--pruner as given; else none for trials shorter than the protocol (at 2-5 epochs the median
    rule stops designs that end among the best: RESULTS.md, "Search fidelity") and the median rule
    for trials of the whole protocol, where it keeps the top 2 at half the epochs ("Fidelity: which
    pruner")."""
    if given is not None:
        return given
    return "none" if search_epochs is not None and search_epochs < epochs else "median"


def absolute_dataset(name: str) -> str:
    """folder:PATH and npz:PATH with an absolute path, so a study resumes from any directory."""
    kind, _, path = name.partition(":")
    return f"{kind}:{Path(path).expanduser().resolve()}" if kind in USER_DATA and path else name


def default_study_name(dataset: str, budget: int, max_macs: int | None = None, max_ram: int | None = None) -> str:
    """<dataset>-b<budget>, then any caps (-macs1.07M, -ram12KB), so a capped search does not
    collide with the uncapped one; for your own data the folder's or file's name stands for the data set."""
    kind, _, path = dataset.partition(":")
    caps = (f"-macs{max_macs / 1e6:g}M" if max_macs else "") + (f"-ram{max_ram / KB:g}KB" if max_ram else "")
    return f"{Path(path).stem or kind if kind in USER_DATA else dataset}-b{budget}{caps}"


def check_mirror(dataset: str, given: bool) -> bool:
    """Whether the search on `dataset` draws the mirror; --mirror given for a built-in data set is an error."""
    if given and dataset.partition(":")[0] not in USER_DATA:
        raise UserError(f"--mirror is for your own data (folder:, npz:); {dataset} says itself whether a mirror keeps "
                        f"its labels ({'yes' if mirror_keeps_label(dataset) else 'no'})")
    return mirror_keeps_label(dataset, given)


def check_dataset(name: str) -> None:
    kind, colon, path = name.partition(":")
    if kind in USER_DATA and colon and path:
        if not Path(path).expanduser().exists():
            raise UserError(f"--dataset {name}: {path} does not exist")
        return
    if name not in (*DATASETS, "cifar10"):
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}, cifar10, folder:PATH, npz:PATH")


SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(flag: str, text: str | None, unit: str, scale: int) -> int | None:
    """`--max-macs 1.07M` -> 1070000; `--max-ram 12.5` (KB) -> 12800 bytes; None stays None."""
    if text is None:
        return None
    value = text.strip().lower()
    factor = SUFFIXES.get(value[-1:], 1) if value else 1
    try:
        number = float(value[:-1] if factor != 1 else value) * factor * scale
    except ValueError:
        number = float("nan")
    if not number == number or number in (float("inf"), float("-inf")):  # nan or inf: not a count
        raise UserError(f"{flag} must be a number of {unit} (like {'1.07M' if unit == 'MACs' else '16'}), got {text!r}")
    if number <= 0:
        raise UserError(f"{flag} must be positive, got {text}")
    return round(number)


def check_budget(budget: int, separable: bool = True) -> None:
    if budget <= 0:
        raise UserError(f"--budget must be a positive number of parameters, got {budget}")
    smallest = family_min_params(separable=separable)
    if budget < smallest:
        raise UserError(f"--budget {budget} is below the smallest design in the search space ({smallest} params)")


def check_caps(limits: Budget, separable: bool = True) -> None:
    """A device cap no design of the space can meet is refused before anything runs."""
    if limits.macs is not None and limits.macs < (least := family_min_macs(separable=separable)):
        raise UserError(f"--max-macs {limits.macs:,} is below the cheapest design in the search space ({least:,} MACs)")
    if limits.ram is not None and limits.ram < (least := family_min_ram(separable=separable)):
        raise UserError(f"--max-ram {kb(limits.ram)} is below the leanest design in the search space "
                        f"({kb(least)}, {least:,} bytes of int8 activations)")


def validate(cfg: SearchConfig) -> None:
    """Every check that needs no data and no storage, so bad input never touches either."""
    check_budget(cfg.budget, cfg.separable)
    check_caps(cfg.limits, cfg.separable)
    for name, value, low in (("--trials", cfg.trials, 1), ("--epochs", cfg.epochs, 1),
                             ("--workers", cfg.workers, 1), ("--confirm-seeds", cfg.confirm_seeds, 1),
                             ("--top-k", cfg.top_k, 0), ("--confirm-cap", cfg.confirm_cap, 0),
                             ("--max-failures", cfg.max_failures, 1),
                             ("--heartbeat", cfg.heartbeat, 1)):
        if value < low:
            raise UserError(f"{name} must be >= {low}, got {value}")
    if cfg.search_epochs is not None and not 1 <= cfg.search_epochs <= cfg.epochs:
        raise UserError(f"--search-epochs must be 1..--epochs ({cfg.epochs}), got {cfg.search_epochs}")
    if cfg.image_size is not None and not 4 <= cfg.image_size <= 512:
        raise UserError(f"--image-size must be 4-512 pixels, got {cfg.image_size}")
    if cfg.subset is not None and cfg.subset < 10:
        raise UserError(f"--subset must be >= 10 images, got {cfg.subset}")
    check_dataset(cfg.dataset)
    if cfg.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {cfg.sampler!r}; choose from {', '.join(SAMPLERS)}")
    if cfg.pruner not in PRUNERS:
        raise UserError(f"unknown pruner {cfg.pruner!r}; choose from {', '.join(PRUNERS)}")
    if cfg.timeout is not None and cfg.timeout <= 0:
        raise UserError(f"--timeout must be positive seconds, got {cfg.timeout}")
    if cfg.recipes not in RECIPES:
        raise UserError(f"unknown --recipes {cfg.recipes!r}; choose from {', '.join(RECIPES)}")
    if cfg.refit not in REFITS:
        raise UserError(f"unknown --refit {cfg.refit!r}; choose from {', '.join(REFITS)}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"unknown precision {cfg.precision!r}; choose from {', '.join(PRECISIONS)}")
    if cfg.target is not None and not 0 < cfg.target <= 100:
        raise UserError(f"--target must be an accuracy in (0, 100], got {cfg.target}")
