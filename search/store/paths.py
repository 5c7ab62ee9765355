"""Where a study lives by default, from its name alone.

Nothing here opens a storage or imports from above the store, so `config` (which resolves a
search's storage) and the store (which opens it) both read these defaults without one importing
the other. The recorded studies under `studies/archive/` are read-only evidence: a search keeps an
archive only where `--storage journal:PATH` names one, and then works on an SQLite file of its own
beside it, so a user's study of the same name never mixes with a recorded one.
"""

from __future__ import annotations

from pathlib import Path

from search.errors import UserError

SCHEME = "journal:"  # --storage journal:PATH: a study's archive, an Optuna journal file
STUDIES = Path("studies")  # a search's SQLite files and artifact folders (git-ignored)
RECORDED = STUDIES / "archive"  # the recorded studies, committed as journal files


def default_storage(study_name: str) -> str:
    return f"sqlite:///{STUDIES / study_name}.db"


def journal_path(url: str) -> Path:
    """The file of a `journal:PATH` URL."""
    path = Path(url.removeprefix(SCHEME)).expanduser()
    if not str(path) or url == SCHEME:
        raise UserError("storage journal: needs a file, e.g. journal:studies/archive/mnist-b8000.jsonl")
    return path


def recorded_archive(study_name: str) -> Path:
    """studies/archive/<study>.jsonl, or its .jsonl.gz where only that one exists."""
    plain = RECORDED / f"{study_name}.jsonl"
    packed = plain.with_name(plain.name + ".gz")
    return packed if packed.exists() and not plain.exists() else plain


def working_storage(archive: Path) -> str:
    """The SQLite file a search kept in an archive works on: beside it, named after it
    (studies/archive/mnist-b8000.jsonl -> studies/archive/mnist-b8000.db)."""
    stem = archive.name.removesuffix(".gz").removesuffix(".jsonl")
    return f"sqlite:///{archive.with_name(stem + '.db')}"


def search_storages(given: str | None, study_name: str) -> tuple[str, str]:
    """(storage URL, archive path or "") of a search. `--storage journal:PATH` names the archive,
    restored from and kept current; the search then works on `working_storage(PATH)` (a journal
    cannot hold the records confirmation adds to finished trials). Otherwise no archive is kept."""
    if given and given.startswith(SCHEME):
        path = journal_path(given)
        return working_storage(path), str(path)
    return given or default_storage(study_name), ""


def read_storage(study_name: str) -> str:
    """What a reading command opens for a bare `--study NAME`: the user's own SQLite file where it
    exists, else the recorded archive of that name (a fresh clone holds only those), else the
    SQLite URL (whose absence is then the error)."""
    url = default_storage(study_name)
    recorded = recorded_archive(study_name)
    if not (STUDIES / f"{study_name}.db").exists() and recorded.exists():
        return f"{SCHEME}{recorded}"
    return url
