"""The trial record: what each trial stores, and the one module that names its keys.

Everything is a plain Optuna user attribute, so `optuna.load_study` and optuna-dashboard show it.
The objective writes the candidate (spec, recipe, counts, the validation curve), confirmation and
the refit write their per-seed records, and the start points carry their label from enqueueing.
Every other module reads and writes through the functions here.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from space.count import count_macs, count_params, count_ram, final_receptive_field
from space.recipe import Recipe
from space.spec import ArchSpec

CONFIRM_SEED_BASE = 1000  # confirmation, refit and export seeds differ from every search seed

# keys of the trial's user attributes
SPEC, RECIPE, PARAMS, MACS, RAM = "spec", "recipe", "params", "macs", "ram"  # RAM: peak int8 activation bytes
VAL_CURVE, EPOCH_SECONDS, DRAWN_PARAMS = "val_acc", "epoch_seconds", "drawn_params"
BASELINE, START = "baseline", "start"  # a hand design that fits the budget / any other start point
FIXED_DESIGN = "design"  # a baseline outside the sampled space: {"spec", "recipe"} trained as it is
CONFIRM, REFIT = "confirm", "refit"  # per-seed records on the training split / on train + val
SURPLUS, INFEASIBLE, FAIL_REASON = "surplus", "infeasible", "fail_reason"

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
NOT_COUNTED = (INFEASIBLE, SURPLUS)  # trials that never trained a candidate


# --- reading ------------------------------------------------------------------------------------

def start_label(attrs: dict) -> str:
    """The preset a trial started from ("seed-004" baseline, "seed-000 fitted" start point), or ""."""
    return attrs.get(BASELINE) or attrs.get(START) or ""


def trial_seconds(t: FrozenTrial) -> float:
    """Wall seconds from the trial's start to its end (0 while it has not ended)."""
    if t.datetime_start is None or t.datetime_complete is None:
        return 0.0
    return (t.datetime_complete - t.datetime_start).total_seconds()


def is_baseline(t: FrozenTrial) -> bool:
    return BASELINE in t.user_attrs


def is_surplus(t: FrozenTrial) -> bool:
    return SURPLUS in t.user_attrs


def is_counted(t: FrozenTrial) -> bool:
    """A finished trial that trained a candidate: what --trials counts."""
    return t.state in COUNTED_STATES and not any(a in t.user_attrs for a in NOT_COUNTED)


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED_STATES) if is_counted(t)]


def completed(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Counted trials that completed with a value (what can be ranked, confirmed, exported)."""
    return [t for t in trials if is_counted(t) and t.state == TrialState.COMPLETE and t.value is not None]


def fixed_design(attrs: dict) -> tuple[ArchSpec, Recipe] | None:
    """The design an enqueued baseline carries when it is not a point of the sampled space."""
    d = attrs.get(FIXED_DESIGN)
    return (ArchSpec.from_dict(d["spec"]), Recipe.from_dict(d["recipe"])) if d else None


def has_design(t: FrozenTrial) -> bool:
    return SPEC in t.user_attrs


def design(t: FrozenTrial) -> tuple[ArchSpec, Recipe]:
    """The spec and recipe a trial trained."""
    return ArchSpec.from_dict(t.user_attrs[SPEC]), Recipe.from_dict(t.user_attrs[RECIPE])


def design_recipe_field(t: FrozenTrial, name: str, default):
    """One field of the recipe the trial trains (stored before its first epoch), or `default`."""
    return (t.user_attrs.get(RECIPE) or {}).get(name, default)


def params(t: FrozenTrial) -> int | None:
    return t.user_attrs.get(PARAMS)


def macs(t: FrozenTrial) -> int | None:
    return t.user_attrs.get(MACS)


def ram(t: FrozenTrial) -> int | None:
    """Peak int8 activation bytes (space.count.count_ram); counted from the spec for trials stored
    before the search recorded it."""
    if RAM in t.user_attrs:
        return t.user_attrs[RAM]
    return count_ram(ArchSpec.from_dict(t.user_attrs[SPEC])) if SPEC in t.user_attrs else None


def val_curve(t: FrozenTrial) -> list[float]:
    """The search's validation accuracy after each epoch the trial trained."""
    return t.user_attrs.get(VAL_CURVE) or []


def confirm_record(t: FrozenTrial) -> dict:
    """Confirmation's record ({} if none): per-seed val/test curves and their summary."""
    return t.user_attrs.get(CONFIRM) or {}


def refit_record(t: FrozenTrial) -> dict:
    """The refit's record ({} if none): per-seed test curves after training on train + val."""
    return t.user_attrs.get(REFIT) or {}


def is_confirmed(t: FrozenTrial, seeds: int = 1) -> bool:
    c = confirm_record(t)
    return "val_acc_mean" in c and c.get("seeds", 0) >= seeds


def fail_reason(t: FrozenTrial) -> str:
    return t.user_attrs.get(FAIL_REASON, "unknown error")


# --- writing (during a trial) -------------------------------------------------------------------

def record_candidate(trial: optuna.Trial, spec: ArchSpec, recipe: Recipe, budget: int,
                     drawn_params: int | None) -> int:
    """Store what the trial trains; return its exact parameter count."""
    n = count_params(spec)
    attrs = {SPEC: spec.to_dict(), RECIPE: recipe.to_dict(), "digest": spec.digest(), PARAMS: n,
             MACS: count_macs(spec), RAM: count_ram(spec), "receptive_field": final_receptive_field(spec),
             "budget_use": round(n / budget, 4)}
    if drawn_params is not None:
        attrs[DRAWN_PARAMS] = drawn_params
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return n


def record_curve(trial: optuna.Trial, curve: list[float], seconds: list[float]) -> None:
    trial.set_user_attr(VAL_CURVE, curve)
    trial.set_user_attr(EPOCH_SECONDS, seconds)


def mark_surplus(trial: optuna.Trial, why: str) -> None:
    trial.set_user_attr(SURPLUS, why)


def mark_infeasible(trial: optuna.Trial, why: str) -> None:
    trial.set_user_attr(INFEASIBLE, why)


def mark_failed(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr(FAIL_REASON, reason[:500])
