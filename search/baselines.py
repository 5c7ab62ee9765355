"""Your own designs as baselines: `--baseline FILE` (a spec JSON as `export` writes it, architecture
plus recipe, or a bare spec) and `--baseline PRESET`.

A baseline is trained, confirmed and compared with the winner exactly like the built-in hand
designs that fit the budget (which are baselines anyway). Every check happens here, before any
data is fetched: a file that is not a design, a design over the budget or for other images.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from search.errors import InputError, UserError
from space.budget import Budget
from space.presets import PRESETS
from space.recipe import Recipe
from space.spec import ArchSpec

# MNIST's and Fashion-MNIST's images: 28x28, one channel, ten classes (the presets were made for them)
IMAGE_IO = {"in_channels": 1, "in_size": 28, "num_classes": 10}


@dataclass(frozen=True)
class Baseline:
    label: str  # the leaderboard's name for it: the preset's name or the file's stem
    spec: ArchSpec
    recipe: Recipe  # with the study's epochs: every design of a study trains as long

    def key(self) -> str:
        """Identity within a study: the label and what is trained, not where the file lies."""
        recipe = hashlib.sha256(self.recipe.to_json().encode()).hexdigest()[:8]
        return f"{self.label}:{self.spec.digest()}:{recipe}"


def load_design_file(path: Path) -> tuple[ArchSpec, Recipe]:
    """A spec JSON, or an export's {"spec": ..., "recipe": ...} (a missing recipe: the defaults)."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from None
    if isinstance(data, dict) and "spec" in data:
        return ArchSpec.from_dict(data["spec"]), Recipe.from_dict(data.get("recipe") or {})
    return ArchSpec.from_dict(data), Recipe()


def resolve(values: tuple[str, ...] | list[str], budget: int | Budget, epochs: int,
            io: dict[str, int] | None = None) -> list[Baseline]:
    """The designs named by --baseline, checked; a preset by name, anything else a file path.
    `io`: the data's channels, size and classes, checked where known (None: not yet known)."""
    out: list[Baseline] = []
    for value in values:
        if value in PRESETS:
            spec, recipe = PRESETS[value]
            label = value
        else:
            try:
                spec, recipe = load_design_file(Path(value))
            except UserError:
                raise  # names the file already
            except InputError as e:  # SpecError, RecipeError: say which file
                raise UserError(f"--baseline {value}: {e}") from None
            label = Path(value).stem
        wrong = {k: getattr(spec, k) for k, v in (io or {}).items() if getattr(spec, k) != v}
        if wrong:
            raise UserError(f"--baseline {value}: made for other images ({wrong}); the data has {io}")
        over = (budget if isinstance(budget, Budget) else Budget(budget)).over(spec)
        if over:
            raise UserError(f"--baseline {value}: {'; '.join(over)} (the budget); nothing over budget is trained")
        if any(b.label == label for b in out):
            raise UserError(f"--baseline {value}: two baselines named {label!r}; rename one file")
        out.append(Baseline(label, spec, replace(recipe, epochs=epochs)))
    return out


def with_keys(cfg):
    """`cfg` (a SearchConfig) with the identity of its --baseline designs, each checked: the CLI
    calls this before any data or storage is touched."""
    from trainers.datasets import DATASETS

    io = IMAGE_IO if cfg.dataset in DATASETS else None  # your own data: checked once it is read
    keys = tuple(b.key() for b in resolve(cfg.baseline, cfg.limits, cfg.epochs, io))
    return replace(cfg, baseline_keys=keys)
