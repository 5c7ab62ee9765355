"""`python -m search archive --study NAME`: the study as an Optuna journal file to commit."""

from __future__ import annotations

from pathlib import Path

from search.store.archive import write_archive
from search.store.paths import STUDIES, read_storage
from search.store.storage import open_storage
from search.store.study import load_existing


def archive_study(study: str, storage: str | None, out: Path | None) -> int:
    url = storage or read_storage(study)
    opened = open_storage(url, create=False)
    loaded = load_existing(study, url, storage=opened)
    path = write_archive(opened, study, out or STUDIES / f"{study}.jsonl")
    n = len(loaded.get_trials(deepcopy=False))
    print(f"archived study {study!r} ({n} trials) to {path}; read it with --storage journal:{path}, "
          f"or open it with optuna-dashboard {path}")
    return 0
