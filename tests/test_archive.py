"""Study archives (Optuna journal files): written by the search and by `archive`, read by every
reading command, restored by a search on a machine that lacks the study; and --search-epochs."""

import gzip
import json
import shutil

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from conftest import counted, run_cli, run_patched
from search.store.records import FAIL_REASON, RECIPE, VAL_CURVE

SMALL = ["--subset", "600", "--sampler", "random", "--seed", "3", "--budget", "8000"]


def load_sqlite(cwd, name, folder="studies"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd}/{folder}/{name}.db")


def kept(name):
    """--storage naming the study's archive: a run that must go on across machines."""
    return ["--storage", f"journal:studies/archive/{name}.jsonl"]


def clone_archives(cwd, clone):
    """What a clone of `cwd` holds of studies/archive/: the journal files, not the working SQLite files."""
    shutil.copytree(cwd / "studies" / "archive", clone / "studies" / "archive",
                    ignore=shutil.ignore_patterns("*.db*", "*-artifacts"))


def load_kept(cwd, name):
    """The SQLite file a search kept in studies/archive/<name>.jsonl works on, beside it."""
    return load_sqlite(cwd, name, "studies/archive")


def load_journal(path, name):
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


def same_trials(a, b):
    """Every trial equal in what a reader sees: number, state, value, params, curve, attributes."""
    assert [t.number for t in a.trials] == [t.number for t in b.trials]
    for x, y in zip(a.trials, b.trials):
        assert (x.state, x.value, x.params, x.intermediate_values) == (y.state, y.value, y.params,
                                                                       y.intermediate_values)
        assert x.user_attrs == y.user_attrs


@pytest.fixture(scope="module")
def searched(tmp_path_factory, data_dir):
    """A search with confirmation whose trials train a 1-epoch proxy of a 2-epoch protocol."""
    cwd = tmp_path_factory.mktemp("archived")
    proc = run_cli(*SMALL, "--trials", "5", "--epochs", "2", "--search-epochs", "1", "--top-k", "1",
                   "--confirm-seeds", "2", "--confirm-cap", "2", "--data-dir", str(data_dir),
                   "--study-name", "arc", *kept("arc"), cwd=cwd, check=True)
    return cwd, proc


def test_the_search_keeps_its_archive_equal_to_the_study(searched):
    cwd, proc = searched
    path = cwd / "studies" / "archive" / "arc.jsonl"
    assert f"archive: {path.relative_to(cwd)}" in proc.stdout
    study, archived = load_kept(cwd, "arc"), load_journal(path, "arc")
    same_trials(study, archived)
    assert archived.user_attrs == study.user_attrs  # config, search clock, verdict
    assert any("confirm" in t.user_attrs for t in archived.trials)  # added after the trials finished
    ops = [json.loads(line) for line in path.read_text().splitlines()]
    assert {op["worker_id"] for op in ops} == {"budgetnas-archive"}  # rewrites change only what changed
    assert not list(path.parent.glob(".*"))  # no temporary or lock file left beside it


def test_the_run_says_what_it_will_take_once_the_first_trial_is_measured_and_checks_it_at_the_end(searched):
    _, proc = searched
    lines = proc.stdout.splitlines()
    assert "estimate: after the first trial, from its measured seconds" in lines
    first_trial = next(i for i, line in enumerate(lines) if line.startswith("trial "))
    said = [i for i, line in enumerate(lines) if line.startswith("estimate: search ")]
    assert said and first_trial < said[0] <= first_trial + 2  # right after the first trial's own line
    assert len(said) >= 2 and "refit" in lines[said[-1]]  # and again when the search ends
    assert any(line.startswith("confirmation and refit took ") and "estimated at the end of the search" in line
               for line in lines)


def test_search_epochs_train_the_compressed_recipe_and_confirmation_the_protocol(searched):
    cwd, proc = searched
    study = load_kept(cwd, "arc")
    assert "1 epochs (confirmation and refit: 2)" in proc.stdout
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert trained and all(len(t.user_attrs[VAL_CURVE]) == 1 for t in trained)
    assert all(t.user_attrs[RECIPE]["epochs"] == 2 for t in trained)  # the record keeps the protocol
    for t in (t for t in study.trials if "confirm" in t.user_attrs):
        assert all(len(curve) == 2 for curve in t.user_attrs["confirm"]["val_acc"])


def test_readers_take_the_archive_and_print_what_the_study_prints(searched, tmp_path):
    cwd, _ = searched
    from_db = run_cli("leaderboard", "--study", "arc", "--storage", "sqlite:///studies/archive/arc.db", cwd=cwd,
                      check=True).stdout
    assert "vs seed-004" in from_db  # the verdict line
    fresh = tmp_path / "clone"
    clone_archives(cwd, fresh)  # what a clone holds
    by_default = run_cli("leaderboard", "--study", "arc", cwd=fresh, check=True).stdout
    named = run_cli("leaderboard", "--study", "arc", "--storage",
                    f"journal:{fresh / 'studies' / 'archive' / 'arc.jsonl'}", cwd=tmp_path, check=True).stdout
    assert by_default == named == from_db
    shown = run_cli("show", "--study", "arc", "--trial", "0", cwd=fresh, check=True).stdout
    assert "Total params" in shown
    assert sorted(p.name for p in fresh.rglob("*")) == ["arc.jsonl", "archive", "studies"]  # read, not written


def test_archive_command_writes_the_study_and_compresses_a_large_one(searched, tmp_path, monkeypatch):
    cwd, _ = searched
    out = tmp_path / "a" / "arc.jsonl"
    proc = run_cli("archive", "--study", "arc", "--out", str(out), cwd=cwd, check=True)
    assert str(out) in proc.stdout
    same_trials(load_kept(cwd, "arc"), load_journal(out, "arc"))

    from search.store import archive
    from search.store.storage import open_storage

    monkeypatch.setattr(archive, "COMPRESS_ABOVE", 1000)
    written = archive.write_archive(open_storage(f"sqlite:///{cwd}/studies/archive/arc.db", create=False), "arc", out)
    assert written.name == "arc.jsonl.gz" and not out.exists()  # one archive per study
    assert gzip.decompress(written.read_bytes()).decode().startswith('{"op_code":0')
    again = run_cli("leaderboard", "--study", "arc", "--storage", f"journal:{written}", cwd=cwd, check=True)
    assert again.stdout == run_cli("leaderboard", "--study", "arc", cwd=cwd, check=True).stdout


def test_a_search_resumes_from_the_archive_alone_and_keeps_its_clock(tmp_path, data_dir):
    args = [*SMALL, "--epochs", "1", "--top-k", "0", "--data-dir", str(data_dir), "--study-name", "go", *kept("go")]
    first = tmp_path / "first"
    first.mkdir()
    run_cli(*args, "--trials", "3", cwd=first, check=True)
    before = load_journal(first / "studies" / "archive" / "go.jsonl", "go")
    clone = tmp_path / "clone"
    clone_archives(first, clone)
    proc = run_cli(*args, "--trials", "5", cwd=clone, check=True)
    assert f"restored study 'go' ({len(before.trials)} trials) from its archive" in proc.stdout
    after = load_kept(clone, "go")
    assert len(counted(after)) == 5
    finished = [t for t in before.trials if t.state.is_finished()]
    assert finished
    for old, new in zip(finished, after.trials):  # the archived trials, as they were
        assert (old.number, old.state, old.params, old.value) == (new.number, new.state, new.params, new.value)
    assert after.user_attrs["search_seconds"] > before.user_attrs["search_seconds"]
    same_trials(after, load_journal(clone / "studies" / "archive" / "go.jsonl", "go"))
    # both runs' spans are kept, so the search clock leaves out the time between them
    from search.store.study import search_runs

    runs = search_runs(after)
    assert len(runs) == 2 and runs[0][1] <= runs[1][0]
    assert sum((b - a).total_seconds() for a, b in runs) == pytest.approx(after.user_attrs["search_seconds"], abs=2)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("searched: "))
    assert "searched: 5 trials (" in line and "best validation against the search clock: " in line


def test_a_stopped_refit_leaves_confirmation_in_the_archive_and_a_clone_goes_on(tmp_path, data_dir):
    """Ctrl-C in the refit: the archive already holds every confirmation seed and the stages'
    wall seconds, so the same command on a machine with only the archive refits, retraining
    no confirmation seed, and the split keeps both runs."""
    from search.store.records import confirm_record, refit_record

    args = [*SMALL, "--epochs", "1", "--trials", "2", "--top-k", "1", "--confirm-seeds", "2", "--confirm-cap", "2",
            "--data-dir", str(data_dir), "--study-name", "stop", *kept("stop")]
    first = tmp_path / "first"
    first.mkdir()
    patch = "import search.job.run as r\ndef stop(*a, **k): raise KeyboardInterrupt\nr.refit_top = stop\n"
    proc = run_patched(patch, args, first, timeout=300)
    assert proc.returncode == 130, proc.stderr[-2000:]
    archived = load_journal(first / "studies" / "archive" / "stop.jsonl", "stop")
    confirmed = {t.number: confirm_record(t) for t in archived.trials if confirm_record(t)}
    assert confirmed and all(rec["seeds"] == 2 for rec in confirmed.values())
    assert set(archived.user_attrs["stage_seconds"]) == {"confirmation", "refit"}
    clone = tmp_path / "clone"
    clone_archives(first, clone)
    proc = run_cli(*args, cwd=clone, check=True)
    assert "confirming trial" not in proc.stdout and "refitting trial" in proc.stdout
    after = load_kept(clone, "stop")
    assert {t.number: confirm_record(t) for t in after.trials if confirm_record(t)} == confirmed
    assert any(refit_record(t).get("seeds") == 2 for t in after.trials)
    stages = after.user_attrs["stage_seconds"]
    assert stages["confirmation"] >= archived.user_attrs["stage_seconds"]["confirmation"]
    assert stages["refit"] > archived.user_attrs["stage_seconds"]["refit"]
    same_trials(after, load_journal(clone / "studies" / "archive" / "stop.jsonl", "stop"))


def test_two_workers_keep_one_archive_of_every_trial(tmp_path, data_dir):
    """Two workers search, then train confirmation's and the refit's seeds side by side; the
    archive holds every trial with its records."""
    from search.store.records import confirm_record, refit_record

    proc = run_cli(*SMALL, "--epochs", "1", "--top-k", "1", "--confirm-seeds", "2", "--confirm-cap", "2",
                   "--trials", "4", "--workers", "2", "--data-dir", str(data_dir), "--study-name", "two",
                   "--storage", "journal:shared/two.jsonl", cwd=tmp_path, check=True)
    study = load_sqlite(tmp_path, "two", "shared")  # journal:PATH names the archive; the work is in SQLite beside it
    assert len(counted(study)) == 4
    confirmed = [t for t in study.trials if confirm_record(t)]
    assert confirmed and all(confirm_record(t)["seeds"] == 2 for t in confirmed)
    assert any(refit_record(t).get("seeds") == 2 for t in confirmed) and "winner: trial" in proc.stdout
    same_trials(study, load_journal(tmp_path / "shared" / "two.jsonl", "two"))


def test_a_running_trial_is_archived_as_failed_and_a_waiting_one_as_waiting(tmp_path):
    from search.store.archive import restore, write_archive

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db", direction="maximize")
    done = study.ask()
    study.tell(done, 1.0)
    running = study.ask()
    running.set_user_attr(VAL_CURVE, [0.5])
    study.enqueue_trial({"x": 1})
    path = write_archive(study._storage, "s", tmp_path / "s.jsonl")
    other = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/other.db")
    assert restore(path, other, "s") == 3
    states = [t.state for t in optuna.load_study(study_name="s", storage=other).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    failed = optuna.load_study(study_name="s", storage=other).trials[1]
    assert failed.user_attrs[VAL_CURVE] == [0.5] and "archived" in failed.user_attrs[FAIL_REASON]


@pytest.mark.parametrize("args, message", [
    (["leaderboard", "--study", "x", "--storage", "journal:missing.jsonl"], "no study archive at missing.jsonl"),
    (["leaderboard", "--study", "x", "--storage", "journal:notes.txt"], "not a study archive"),
    (["leaderboard", "--study", "x", "--storage", "journal:"], "needs a file"),
    (["archive", "--study", "nothing"], "no study database"),
    (["frontier", "--budgets", "4000,8000", "--storage", "journal:a.jsonl"], "with several budgets name a folder"),
    (["--budget", "8000", "--storage", "journal:notes.txt/kept.jsonl"], "archive folder notes.txt is not writable"),
    (["--budget", "8000", "--search-epochs", "0"], "--search-epochs must be 1..--epochs (15)"),
    (["--budget", "8000", "--epochs", "3", "--search-epochs", "4"], "--search-epochs must be 1..--epochs (3)"),
])
def test_bad_archive_input_gets_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not a journal\n")
    proc = run_cli(*args, cwd=tmp_path, env={"BUDGETNAS_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # answered before any data


def test_a_resume_with_other_search_epochs_is_refused(searched):
    cwd, _ = searched
    before = load_kept(cwd, "arc").trials
    proc = run_cli(*SMALL, "--trials", "9", "--epochs", "2", "--study-name", "arc", *kept("arc"), cwd=cwd)
    assert proc.returncode == 2 and "search_epochs=1 (asked None)" in proc.stderr
    assert [t.number for t in load_kept(cwd, "arc").trials] == [t.number for t in before]


def test_a_run_without_journal_searches_a_study_of_its_own_and_leaves_the_recorded_one(searched, tmp_path, data_dir):
    """A fresh clone holds recorded studies under studies/archive/: the same name's search starts
    the user's own study in studies/<name>.db and changes no recorded file."""
    cwd, _ = searched
    clone = tmp_path / "clone"
    clone_archives(cwd, clone)
    recorded = {p: p.read_bytes() for p in (clone / "studies" / "archive").iterdir()}
    proc = run_cli(*SMALL, "--trials", "1", "--epochs", "1", "--top-k", "0", "--data-dir", str(data_dir),
                   "--study-name", "arc", cwd=clone, check=True)
    assert "restored" not in proc.stdout and "archive" not in proc.stdout
    assert len(counted(load_sqlite(clone, "arc"))) == 1  # its own study, searched
    assert {p: p.read_bytes() for p in (clone / "studies" / "archive").iterdir()} == recorded


@pytest.mark.parametrize("args, trained", [([], 2), (["--epochs", "2"], None), (["--epochs", "1"], None),
                                           (["--search-epochs", "5"], 5), (["--epochs", "3", "--search-epochs", "3"], 3)])
def test_search_epochs_default_to_the_measured_fidelity_where_the_protocol_is_longer(args, trained, monkeypatch):
    from search import config
    from search.cli import _search_parser
    from search.config import SearchConfig

    monkeypatch.setattr(config, "SEARCH_EPOCHS", 2)  # whatever `bench proxy` has chosen
    cfg = SearchConfig.from_args(_search_parser().parse_args(["--budget", "8000", *args]))
    assert cfg.search_epochs == trained and cfg.trial_epochs == (trained or cfg.epochs)
    assert cfg.identity()["search_epochs"] == trained  # a study made at the default keeps its fidelity
    monkeypatch.setattr(config, "SEARCH_EPOCHS", None)  # none chosen yet: the whole protocol, unless given
    assert config.default_search_epochs(None, 15) is None and config.default_search_epochs(4, 15) == 4


@pytest.mark.parametrize("args, pruner", [([], "none"), (["--search-epochs", "15"], "median"), (["--epochs", "2"], "median"),
                                          (["--search-epochs", "5"], "none"), (["--pruner", "median"], "median"),
                                          (["--search-epochs", "15", "--pruner", "none"], "none")])
def test_short_search_trials_are_unpruned_unless_asked_and_whole_ones_pruned(args, pruner, monkeypatch):
    """The median rule stops short trials that end among the best (bench proxy) but keeps the top
    2 of whole-protocol trials at half the epochs (bench fidelity): its default follows the length."""
    from search import config
    from search.cli import _search_parser
    from search.config import SearchConfig

    monkeypatch.setattr(config, "SEARCH_EPOCHS", 2)
    assert SearchConfig.from_args(_search_parser().parse_args(["--budget", "8000", *args])).pruner == pruner


def test_compressed_recipes_keep_their_shares_of_the_run():
    from space.recipe import Recipe

    step = Recipe(epochs=15, schedule="step", step_size=8, ema=3.0)
    assert step.compressed(15) is step
    short = step.compressed(3)
    assert (short.epochs, short.step_size, short.ema) == (3, 2, pytest.approx(0.6))
    assert Recipe(epochs=15, step_size=6).compressed(1).step_size == 1  # never below one epoch
    cycle = Recipe(epochs=15, schedule="onecycle", optimizer="adam", lr=0.01).compressed(2)
    assert (cycle.epochs, cycle.lr, cycle.optimizer) == (2, 0.01, "adam")


def test_export_from_the_archive_alone_writes_the_model_and_leaves_the_archive(searched, tmp_path, data_dir):
    cwd, _ = searched
    path = cwd / "studies" / "archive" / "arc.jsonl"
    before = path.read_bytes()
    proc = run_cli("export", "--study", "arc", "--best", "--out", str(tmp_path / "exp"), "--data-dir", str(data_dir),
                   "--storage", f"journal:{path}", cwd=tmp_path, check=True)
    assert (tmp_path / "exp" / "model.onnx").exists() and (tmp_path / "exp" / "weights.pt").exists()
    assert "attached" not in proc.stdout  # the archive was read through a private copy
    assert path.read_bytes() == before
