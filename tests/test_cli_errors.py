"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing stored changed."""

import json
import shutil
import signal
import subprocess
import sys

import optuna
import pytest

from conftest import cli_env, run_cli
from trainers.fetch import RAW_FILES, raw_dir


@pytest.fixture(scope="module")
def made(tmp_path_factory, data_dir):
    cwd = tmp_path_factory.mktemp("errors")
    run_cli("--budget", "6000", "--trials", "2", "--epochs", "1", "--subset", "500", "--top-k", "0",
            "--data-dir", str(data_dir), "--study-name", "keep", cwd=cwd, check=True)
    return cwd


def snapshot(cwd):
    s = optuna.load_study(study_name="keep", storage=f"sqlite:///{cwd}/studies/keep.db")
    return [(t.number, t.state, t.value, sorted(t.user_attrs)) for t in s.trials], s.user_attrs


def check_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for n in needles:
        assert n in err[0], err[0]


CASES = [
    (["--budget", "0"], ["--budget must be a positive"]),
    (["--budget", "-5"], ["--budget must be a positive"]),
    (["--budget", "100"], ["below the smallest design", "128 params"]),  # a separable second block
    (["--budget", "200", "--no-separable"], ["below the smallest design", "220 params"]),
    (["--budget", "6000", "--confirm-cap", "-1"], ["--confirm-cap must be >= 0"]),
    (["--budget", "6000", "--trials", "0"], ["--trials must be >= 1"]),
    (["--budget", "6000", "--dataset", "cifar"], ["unknown dataset 'cifar'"]),
    (["--budget", "6000", "--mirror"], ["--mirror is for your own data", "mnist says itself", "(no)"]),
    (["--budget", "6000", "--dataset", "fashion-mnist", "--mirror"], ["fashion-mnist says itself", "(yes)"]),
    (["--budget", "6000", "--sampler", "grid"], ["unknown sampler 'grid'"]),
    (["--budget", "6000", "--pruner", "sometimes"], ["unknown pruner 'sometimes'"]),
    (["--budget", "6000", "--storage", "not a url"], ["malformed storage URL"]),
    (["--budget", "6000", "--storage", "mysql://u@h/db"], ["unsupported storage 'mysql'"]),
    (["--budget", "6000", "--device", "cuda:0"], ["--device cuda:0"]),
    (["--budget", "6000", "--device", "tpu"], ["--device tpu"]),
    (["--budget", "6000", "--precision", "fp8"], ["unknown precision 'fp8'"]),
    (["--budget", "6000", "--refit", "best"], ["unknown --refit 'best'"]),
    (["--budget", "6000", "--target", "120"], ["--target must be"]),
    (["--budget", "8000", "--max-macs", "0"], ["--max-macs must be positive"]),
    (["--budget", "8000", "--max-macs", "-5"], ["--max-macs must be positive"]),
    (["--budget", "8000", "--max-macs", "lots"], ["--max-macs must be a number of MACs", "'lots'"]),
    (["--budget", "8000", "--max-macs", "1k"], ["below the cheapest design", "30,668 MACs"]),
    (["--budget", "8000", "--max-ram", "0"], ["--max-ram must be positive"]),
    (["--budget", "8000", "--max-ram", "-1.5"], ["--max-ram must be positive"]),
    (["--budget", "8000", "--max-ram", "3"], ["below the leanest design", "3,488 bytes"]),
    (["--budget", "8000", "--max-ram", "inf"], ["--max-ram must be a number of KB"]),
    (["frontier", "--budgets", "4000,8000", "--max-macs", "nan"], ["--max-macs must be a number of MACs"]),
    (["show", "--preset", "seed-999"], ["unknown preset 'seed-999'"]),
    (["show", "--study", "nope", "--trial", "1"], ["no study database"]),
    (["leaderboard", "--study", "nope"], ["no study database"]),
    (["bench", "space", "--budget", "10"], ["below the smallest design"]),
    (["bench", "layout", "--budget", "10"], ["below the smallest design"]),
    (["bench", "dropout", "--budget", "10"], ["below the smallest design"]),
    (["bench", "fidelity", "--budget", "0"], ["--budget must be a positive"]),
    (["bench", "fidelity", "--epochs", "0"], ["--epochs >= 1"]),
    (["bench", "recipe", "--budget", "4000", "--names", "headless"], ["--names 'headless': choose from", "seed-000-sep"]),
    (["bench", "recipe", "--variants", "adam-onecycle-swa"], ["--variants 'adam-onecycle-swa': choose from"]),
]


def run_main(args, cwd, monkeypatch, capfd) -> subprocess.CompletedProcess:
    """`python -m search ARGS` in this process: the same main() and its one mapping of errors to
    exit codes, without a fresh interpreter and torch import per case (the tests below and the
    other files run the real subprocess). The signal handlers main() installs are put back."""
    from search.cli import main

    monkeypatch.chdir(cwd)
    capfd.readouterr()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = main(list(args))
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.mark.parametrize("args, needles", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(made, args, needles, monkeypatch, capfd):
    before = snapshot(made)
    own = ["--study-name", "keep"] if args[0].startswith("--") else []
    check_error(run_main([*args, *own], made, monkeypatch, capfd), *needles)
    assert snapshot(made) == before


def test_one_bad_input_through_the_interpreter(made):
    """The table above through `python -m search` itself: exit code, one line, nothing stored changed."""
    before = snapshot(made)
    check_error(run_cli("--budget", "6000", "--sampler", "grid", "--study-name", "keep", cwd=made),
                "unknown sampler 'grid'")
    assert snapshot(made) == before


def test_unknown_study_lists_what_is_there(made):
    check_error(run_cli("leaderboard", "--study", "other", "--storage", f"sqlite:///{made}/studies/keep.db", cwd=made),
                "no study named 'other'", "keep")


def test_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n")
    check_error(run_cli("--budget", "6000", "--storage", f"sqlite:///{bogus}", cwd=tmp_path), "is not an SQLite database")
    assert bogus.read_text() == "these are my notes, not a database\n"


def test_studies_directory_not_writable(tmp_path, data_dir):
    blocker = tmp_path / "studies"
    blocker.write_text("a file where the studies folder should be")
    proc = run_cli("--budget", "6000", "--trials", "1", "--data-dir", str(data_dir), cwd=tmp_path)
    check_error(proc, "studies directory", "not writable")


def test_data_file_with_wrong_checksum(tmp_path, data_dir, monkeypatch):
    folder = raw_dir("mnist", tmp_path / "data")
    folder.mkdir(parents=True)
    for f in RAW_FILES:
        shutil.copy(raw_dir("mnist", data_dir) / f, folder / f)
    labels = folder / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[20] ^= 0x01  # one label changes
    labels.write_bytes(bytes(raw))
    before = labels.read_bytes()
    for offline in ("1", "0"):  # offline or online, the damaged file is named and left alone
        proc = run_cli("--budget", "6000", "--trials", "1", "--epochs", "1", "--subset", "100",
                       "--data-dir", str(tmp_path / "data"), cwd=tmp_path, timeout=120,
                       env={"BUDGETNAS_OFFLINE": offline})
        check_error(proc, "checksum mismatch", "t10k-labels-idx1-ubyte", "Delete it", "by hand")
        assert labels.read_bytes() == before
    # the storage was checked first, but no study was made for data that could not be used
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path}/studies/mnist-b6000.db") == []


def test_malformed_spec_file_names_the_field(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text('{"blocks": [{"widths": [8, 0]}]}')
    check_error(run_cli("show", "--spec", str(spec), cwd=tmp_path), "blocks[0].widths[1]")


def test_spec_file_with_a_bad_recipe_names_the_field(tmp_path):
    from space import PRESETS

    spec = tmp_path / "design.json"
    spec.write_text(json.dumps({"spec": PRESETS["seed-004"][0].to_dict(), "recipe": {"lr": -0.1}}))
    check_error(run_cli("show", "--spec", str(spec), cwd=tmp_path), "recipe.lr")
    spec.write_text(json.dumps({"spec": PRESETS["seed-004"][0].to_dict(), "recipe": {"lr": "fast"}}))
    check_error(run_cli("show", "--spec", str(spec), cwd=tmp_path), "recipe.lr")


def test_bad_storage_is_answered_before_any_data_is_fetched(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("not a database")
    empty = tmp_path / "no-data-here"
    proc = run_cli("--budget", "6000", "--storage", f"sqlite:///{notes}", "--data-dir", str(empty), cwd=tmp_path,
                   env={"BUDGETNAS_OFFLINE": "1"})
    check_error(proc, "is not an SQLite database")
    assert not empty.exists()


@pytest.mark.parametrize("args, needle", [(["--study-name", "a/b"], "--study-name 'a/b'"),
                                          (["--max-macs", "20000"], "--max-macs 20,000 is below the cheapest design")])
def test_bad_study_name_or_cap_is_answered_before_any_data_is_fetched(tmp_path, args, needle):
    empty = tmp_path / "no-data-here"
    proc = run_cli("--budget", "6000", *args, "--data-dir", str(empty), cwd=tmp_path, env={"BUDGETNAS_OFFLINE": "1"})
    check_error(proc, needle)
    assert not empty.exists() and not (tmp_path / "studies").exists()


def test_unwritable_output_folder_is_answered_before_training(tmp_path):
    (tmp_path / "blocker").write_text("a file")
    proc = run_cli("train", "--preset", "seed-004", "--epochs", "1", "--out", str(tmp_path / "blocker" / "run"),
                   "--data-dir", str(tmp_path / "no-data-here"), cwd=tmp_path, env={"BUDGETNAS_OFFLINE": "1"})
    check_error(proc, "output folder")
    assert not (tmp_path / "no-data-here").exists()


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # `python -m search show --preset seed-004 | head -1`: the reader is gone before the first write
    proc = subprocess.Popen([sys.executable, "-m", "search", "show", "--preset", "seed-004"], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
