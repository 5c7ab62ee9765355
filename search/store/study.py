"""Studies in storage: their names, identity (a resume must match), creation, loading, artifacts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search.config import SearchConfig
from search.errors import UserError
from search.store.records import has_design, trial_seconds
from search.store import archive
from search.store.paths import SCHEME, read_storage
from search.store.storage import check_writable_dir, open_storage, sqlite_path

ARTIFACT_ATTR = "artifact_dir"  # study attribute: where confirmed weights and exports are stored
VERDICT_ATTR = "verdict"  # study attribute: one plain line per comparison (winner vs baseline or runner-up)
VERDICT_DATA_ATTR = "verdict_data"  # study attribute: the figures behind each line
FRONTIER_ATTR = "frontier"  # study attribute: the frontier figure this study is part of
DATA_ATTR = "data"  # study attribute: what a model of this study takes and gives (see data_facts)
SEARCH_SECONDS_ATTR = "search_seconds"  # study attribute: wall seconds of trial search, summed over runs
SEARCH_RUNS_ATTR = "search_runs"  # study attribute: [start, end] of every search run (see search_runs)
STAGE_SECONDS_ATTR = "stage_seconds"  # study attribute: {stage: wall seconds} after the search, summed over runs
STAGES = ("confirmation", "refit")  # what runs after the search, in order
ESTIMATE_ATTR = "estimate_at_search_end"  # study attribute: seconds per stage left when the search ended (job.eta)


def check_study_name(name: str) -> None:
    if not name or len(name) > 200 or any(c in name for c in "/\\\0") or name.startswith("."):
        raise UserError(f"--study-name {name!r}: use 1-200 characters, no slashes, not starting with '.'")


def check_resumable(storage: optuna.storages.BaseStorage, cfg: SearchConfig) -> None:
    """Refuse (changing nothing) a stored study of the same name made for another setup."""
    try:
        study_id = storage.get_study_id_from_name(cfg.study_name)
    except KeyError:
        return
    stored = storage.get_study_user_attrs(study_id).get("config")
    if stored is None:
        return
    old = SearchConfig.from_dict(stored).identity()
    diff = [f"{k}={old[k]!r} (asked {v!r})" for k, v in cfg.identity().items() if old[k] != v]
    if diff:
        raise UserError(
            f"study {cfg.study_name!r} was created with " + ", ".join(diff)
            + "; resume it with the same settings or pick another --study-name"
        )


def default_artifact_dir(cfg: SearchConfig) -> str:
    """Beside an SQLite file, relative to it (the pair moves together); else under ./studies."""
    folder = f"{cfg.study_name}-artifacts"
    return folder if sqlite_path(cfg.storage) is not None else str((Path("studies") / folder).resolve())


def open_search_storage(cfg: SearchConfig, log=print) -> optuna.storages.RDBStorage:
    """The storage a search writes to, checked (URL, file, folder, resumability) before any data;
    a study the storage lacks but its archive holds is restored from the archive first."""
    check_study_name(cfg.study_name)
    if cfg.archive:  # it is rewritten after every trial: a folder it cannot go to fails now, not then
        check_writable_dir(Path(cfg.archive).parent, "archive folder")
    storage = open_storage(cfg.storage, heartbeat=cfg.heartbeat)
    restore_archived(storage, cfg, log)
    check_resumable(storage, cfg)
    return storage


def restore_archived(storage: optuna.storages.BaseStorage, cfg: SearchConfig, log=print) -> None:
    try:
        storage.get_study_id_from_name(cfg.study_name)
        return
    except KeyError:
        pass
    path = Path(cfg.archive)
    if cfg.archive and path.exists():
        n = archive.restore(path, storage, cfg.study_name)
        log(f"restored study {cfg.study_name!r} ({n} trials) from its archive {path}")


def open_or_create(storage, cfg: SearchConfig, sampler, pruner) -> optuna.Study:
    """The study named by `cfg` (created if absent, with its config stored as user attributes)."""
    try:
        study = optuna.create_study(study_name=cfg.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=cfg.study_name, storage=storage, sampler=sampler, pruner=pruner)
    if "config" not in study.user_attrs:
        study.set_user_attr("config", cfg.to_dict())
        study.set_user_attr("objective", "validation accuracy (%) after the last epoch")
        study.set_user_attr(ARTIFACT_ATTR, default_artifact_dir(cfg))
    return study


def load_existing(study_name: str, storage_url: str | None, *, storage=None) -> optuna.Study:
    """Open a study for reading (leaderboard, show, export, report); never creates anything."""
    storage = storage or open_storage(storage_url or read_storage(study_name), create=False)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise UserError(
            f"no study named {study_name!r} in that storage; it holds: {', '.join(names) or 'none'}"
        ) from None


def trained_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial `number` of the study, which must have trained a candidate."""
    found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not found or not has_design(found[0]):
        raise UserError(f"study {study.study_name!r} has no trained trial number {number}")
    return found[0]


def study_config(study: optuna.Study) -> SearchConfig:
    stored = study.user_attrs.get("config")
    if stored is None:
        raise UserError(f"study {study.study_name!r} was not made by budgetnas (no stored config)")
    return SearchConfig.from_dict(stored)


def artifact_dir(study: optuna.Study, storage_url: str | None = None) -> Path:
    """The study's artifact folder, wherever the command runs from (stored with the study)."""
    cfg = study_config(study)
    stored = study.user_attrs.get(ARTIFACT_ATTR, str(Path("studies") / f"{study.study_name}-artifacts"))
    path = Path(stored)
    # an archive holds no artifacts: read from one, they go where the study's own SQLite file keeps them
    from_archive = bool(storage_url) and storage_url.startswith(SCHEME)
    db = sqlite_path(cfg.storage if from_archive or not storage_url else storage_url)
    if not path.is_absolute() and db is not None and ARTIFACT_ATTR in study.user_attrs:
        path = db.parent / path
    return path


def store_verdict(study: optuna.Study, verdicts: list[dict]) -> None:
    study.set_user_attr(VERDICT_ATTR, [v["line"] for v in verdicts])
    study.set_user_attr(VERDICT_DATA_ATTR, verdicts)


def verdict_lines(study: optuna.Study) -> list[str]:
    """The stored verdict, one line per comparison ([] before confirmation)."""
    return list(study.user_attrs.get(VERDICT_ATTR) or [])


def data_facts(data) -> dict:
    """What an exported model needs to know of its data: normalization (per channel, from the
    training split for your own data), input shape, class names."""
    io = data.io
    return {"mean": list(data.mean), "std": list(data.std), "channels": io["in_channels"],
            "size": io["in_size"], "classes": list(data.classes)}


def stored_data_facts(study: optuna.Study) -> dict:
    """`data_facts` as stored by the search; studies stored before it: MNIST-like from the table."""
    if DATA_ATTR in study.user_attrs:
        return study.user_attrs[DATA_ATTR]
    from trainers.datasets import DATASETS

    info = DATASETS[study_config(study).dataset]
    return {"mean": [info.mean], "std": [info.std], "channels": 1, "size": 28, "classes": list(info.classes)}


def search_seconds(study: optuna.Study) -> float:
    """Wall seconds this study has spent searching, over every run: what `--timeout` is measured
    against, so that running the same command again goes on where the last run stopped instead of
    searching for the whole timeout again. A study stored before the figure was kept is credited
    with the summed durations of its finished trials (the wall time of a one-worker search)."""
    if SEARCH_SECONDS_ATTR in study.user_attrs:
        return float(study.user_attrs[SEARCH_SECONDS_ATTR])
    return sum(trial_seconds(t) for t in study.get_trials(deepcopy=False) if t.state.is_finished())


def set_search_seconds(study: optuna.Study, seconds: float, run: tuple[datetime, datetime] | None = None) -> None:
    """Store the search clock; with `run`, also add that run's start and end to `search_runs`."""
    study.set_user_attr(SEARCH_SECONDS_ATTR, round(seconds, 1))
    if run is not None:
        stored = list(study.user_attrs.get(SEARCH_RUNS_ATTR, []))
        study.set_user_attr(SEARCH_RUNS_ATTR, stored + [[run[0].isoformat(), run[1].isoformat()]])


def stage_seconds(study: optuna.Study) -> dict[str, float]:
    """Wall seconds each stage after the search (confirmation, refit) has taken over every run,
    interrupted ones included, so that a job resumed across machines can still say how its wall
    time split. A stage never run is absent."""
    return {k: float(v) for k, v in study.user_attrs.get(STAGE_SECONDS_ATTR, {}).items()}


def add_stage_seconds(study: optuna.Study, stage: str, seconds: float) -> None:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    stored = stage_seconds(study)
    stored[stage] = round(stored.get(stage, 0.0) + seconds, 1)
    study.set_user_attr(STAGE_SECONDS_ATTR, stored)


def search_runs(study: optuna.Study) -> list[tuple[datetime, datetime]]:
    """When each run of the search went on, in the clock Optuna stamps trials with (naive local
    time), so that a study resumed days later can still say how long its search took to reach
    each trial (report_data.anytime). Empty for studies stored before the runs were kept."""
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b))
            for a, b in study.user_attrs.get(SEARCH_RUNS_ATTR, [])]


def store_estimate(study: optuna.Study, seconds: dict[str, float]) -> None:
    study.set_user_attr(ESTIMATE_ATTR, seconds)


def stored_estimate(study: optuna.Study) -> dict[str, float] | None:
    """What job.eta estimated for the stages after the search when the search ended (None: never)."""
    return study.user_attrs.get(ESTIMATE_ATTR)
