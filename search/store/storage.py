"""Storage URLs -> Optuna RDB storages, with the checks that keep bad input from touching data.

SQLite (default) is opened in WAL mode with a 60 s busy timeout, so several worker processes on
one machine can share one file without "database is locked" failures: WAL lets readers run
beside the single writer, and the timeout makes a writer wait its turn instead of failing.
We stay on RDB storage (rather than Optuna's journal file) because heartbeats need it and
optuna-dashboard opens the same `sqlite:///` URL. PostgreSQL (`postgresql://...`, via the
psycopg driver) is the path to many machines.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from search.errors import UserError, first_line
from search.store import archive
from search.store.paths import SCHEME, journal_path

# Optuna's trials table, only the columns a claim reads and writes, in SQLAlchemy's public
# lightweight form: Optuna's schema names (stable across its migrations; a state is its enum,
# PostgreSQL's type "trialstate"), without importing Optuna's private ORM mapping.
TRIALS = sqlalchemy.table("trials", sqlalchemy.column("trial_id"),
                          sqlalchemy.column("state", sqlalchemy.Enum(TrialState, name="trialstate")),
                          sqlalchemy.column("datetime_start", sqlalchemy.DateTime))
SQLITE_BUSY_TIMEOUT_S = 60
SCHEMA_RACE_RETRIES = 5


def normalize_url(url: str) -> str:
    """Validate a storage URL; pick the psycopg driver for plain postgresql:// URLs."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UserError(
            f"malformed storage URL {url!r}: expected sqlite:///path.db or "
            "postgresql://user:pass@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    if backend != "sqlite":
        raise UserError(f"unsupported storage {backend!r}: use sqlite:/// or postgresql://")
    if not parsed.database or parsed.database == ":memory:":
        raise UserError("storage: an in-memory SQLite database cannot be shared or resumed; give a file")
    return url


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None


def check_sqlite_file(path: Path, create: bool) -> None:
    """The file must be an SQLite database (or absent, when creating) in a writable folder.

    The file is only ever opened through SQLite. A plain open() + close() of the database file
    drops every POSIX lock this process holds on it (fcntl semantics), and then another process
    that closes its last connection takes itself for the last user and deletes the WAL under a
    running search ("disk I/O error"). Readers change nothing; a creator switches to WAL once.
    """
    if path.is_dir():
        raise UserError(f"storage: {path} is a directory, not a database file")
    if not path.exists():
        if not create:
            raise UserError(f"no study database at {path} (run a search first, or pass --storage)")
    else:
        _check_is_sqlite(path)
    if not create:
        return
    check_writable_dir(path.parent, "studies directory")
    with contextlib.closing(sqlite3.connect(path)) as con:  # WAL persists in the file: set it once
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            raise UserError(f"storage: {path}: {e}") from None


def _check_is_sqlite(path: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            con.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as e:
        if "not a database" in str(e):
            raise UserError(f"storage: {path} is not an SQLite database; refusing to touch it") from None
        raise UserError(f"storage: {path}: {e}") from None


def check_writable_dir(folder: Path, what: str) -> None:
    """Create `folder` if needed and prove we can write there, before any long work starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"{what} {folder} is not writable: {e.strerror or e}") from None


class ClaimingStorage(optuna.storages.RDBStorage):
    """RDB storage whose claim of a waiting (enqueued) trial is one atomic compare-and-set.

    Optuna claims a waiting trial by reading its state and then writing RUNNING. SQLite ignores
    SELECT ... FOR UPDATE and pysqlite reads outside a transaction, so two worker processes could
    both read WAITING and both run the trial; the second to finish then failed with "Cannot tell a
    COMPLETE trial". Here the write itself checks the state: exactly one claim succeeds.
    """

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        claim = (sqlalchemy.update(TRIALS)
                 .where(TRIALS.c.trial_id == trial_id, TRIALS.c.state == TrialState.WAITING)
                 .values(state=TrialState.RUNNING, datetime_start=datetime.now()))
        with self.engine.begin() as connection:
            return connection.execute(claim).rowcount == 1


class _AnnotatingStorage(ClaimingStorage):
    # Optuna freezes a trial once it finishes, but confirmation results and exported artifacts
    # come later and belong on that trial. This storage may set attributes on finished trials;
    # only `open_annotating_storage` makes one, and only confirm/export use it.
    def check_trial_is_updatable(self, trial_id: int, trial_state: optuna.trial.TrialState) -> None:
        return None


def open_annotating_storage(url: str) -> optuna.storages.RDBStorage:
    """A storage of an existing study that may add attributes and artifacts to finished trials."""
    return open_storage(url, create=False, cls=_AnnotatingStorage)


def trial_id(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> int:
    """The storage's id of trial `number`, through the public storage API."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


def set_trial_attr(storage: optuna.storages.BaseStorage, study_name: str, number: int, key: str, value) -> None:
    """Set a user attribute on trial `number`, finished or not."""
    storage.set_trial_user_attr(trial_id(storage, study_name, number), key, value)


def open_storage(
    url: str,
    *,
    create: bool = True,
    heartbeat: int | None = None,
    cls: type[optuna.storages.RDBStorage] = ClaimingStorage,
) -> optuna.storages.RDBStorage:
    if url.startswith(SCHEME):
        return _archive_copy(url, create, cls)
    url = normalize_url(url)
    path = sqlite_path(url)
    kwargs: dict = {}
    if path is not None:
        check_sqlite_file(path, create)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat:
        kwargs.update(
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    try:
        for attempt in range(SCHEMA_RACE_RETRIES):
            try:
                return cls(url, **kwargs)
            except sqlalchemy.exc.IntegrityError:
                # another process is creating the same fresh schema right now: let it finish
                if attempt == SCHEMA_RACE_RETRIES - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
    except ModuleNotFoundError as e:
        raise UserError(
            f"storage driver missing ({e.name}); for PostgreSQL: pip install 'budgetnas[postgres]'"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as e:
        raise UserError(f"cannot open storage {make_url(url).render_as_string()}: {first_line(e)}") from None
    raise AssertionError("unreachable")


def _archive_copy(url: str, create: bool, cls: type[optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """A study archive opened for reading: its studies restored into a private SQLite file, so
    every reader (and export's records on finished trials) works as on the search's own storage;
    nothing is written back to the archive."""
    path = journal_path(url)
    if create:
        raise UserError(f"--storage {url}: a search runs on sqlite:/// or postgresql://; a journal file is a "
                        f"study's archive, restored and kept current by the search (--archive {path})")
    src = archive.read_archive(path)
    db = Path(tempfile.mkdtemp(prefix="budgetnas-read-")) / "study.db"
    atexit.register(shutil.rmtree, db.parent, ignore_errors=True)
    storage = cls(f"sqlite:///{db}")
    for study in src.get_all_studies():
        archive.copy_study(src, storage, study.study_name)
    return storage


def load_trials(storages: list[str]) -> list[optuna.trial.FrozenTrial]:
    """Every trial of every study in the given SQLite files or storage URLs."""
    trials: list[optuna.trial.FrozenTrial] = []
    for where in storages:
        url = where if "://" in where else f"sqlite:///{where}"
        storage = open_storage(url, create=False)
        for name in optuna.get_all_study_names(storage):
            trials += optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    return trials
