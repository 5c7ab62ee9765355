"""The GPU path: `bench gpu` as a dry run on CPU (always), and every CUDA branch (marked `gpu`,
skipped without a CUDA device, in CI too, since CI has none)."""

import os

import optuna
import pytest
import torch
from optuna.trial import TrialState

from conftest import run_cli

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_bench_gpu_dry_run_on_cpu(tmp_path, data_dir):
    proc = run_cli("bench", "gpu", "--device", "cpu", "--data-dir", str(data_dir), cwd=tmp_path, check=True)
    out = proc.stdout
    assert "dry run" in out and "fp32" in out and "bf16" in out and "x fp32" in out
    assert "2 workers:" in out and "x 1 worker" in out
    assert "winner: trial" in out and "fused seeds: not built" in out
    from search.bench.gpu import BUDGET_S

    assert f"of a {BUDGET_S:.0f} s budget" in out and "OVER" not in out


def test_a_child_process_keeps_the_callers_pythonpath_after_the_checkout(tmp_path, monkeypatch):
    """On a GPU box optuna and the rest may sit in a --target folder named by PYTHONPATH; a
    `python -m search` child (bench gpu's stages, bench workers) must still import them."""
    import subprocess
    import sys

    from search.process import ROOT, child_env

    extra = tmp_path / "site"
    extra.mkdir()
    (extra / "only_on_the_box.py").write_text("NAME = 'found'\n")
    monkeypatch.setenv("PYTHONPATH", str(extra))
    env = child_env()
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), str(extra)]
    out = subprocess.run([sys.executable, "-c", "import only_on_the_box, search; print(only_on_the_box.NAME)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "found"


def test_an_out_of_memory_error_is_a_failed_trial_and_the_search_goes_on(tmp_path, small_data, monkeypatch):
    """What a CUDA OOM does to a trial, raised here as torch raises it, so this runs without a GPU."""
    import search.job.objective as obj
    from search.config import SearchConfig

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(obj, "train", oom)
    study = optuna.create_study(direction="maximize")
    study.optimize(obj.make_objective(SearchConfig(budget=8000, trials=2, epochs=1), small_data), n_trials=2,
                   catch=(Exception,))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert all(t.user_attrs["fail_reason"].startswith("OutOfMemoryError: CUDA out of memory") for t in study.trials)


@pytest.mark.gpu
@cuda
def test_train_and_evaluate_on_cuda(data_dir):
    from space import PRESETS
    from trainers import load_data
    from trainers.loop import correct_mask, evaluate, train

    data = load_data("mnist", data_dir, "cuda", subset=4000)
    spec, recipe = PRESETS["seed-004"]
    for precision in ("fp32", "bf16"):
        result = train(spec, data.train, recipe.__class__(**{**recipe.to_dict(), "epochs": 2}),
                       evals={"val": data.val}, norm=(data.mean, data.std), precision=precision)
        assert next(result.model.parameters()).is_cuda and result.epochs[-1].val_acc > 50
        _, acc = evaluate(result.model, data.test, (data.mean, data.std), precision)
        mask = correct_mask(result.model, data.test, (data.mean, data.std), precision)
        assert not mask.is_cuda and 100.0 * mask.float().mean().item() == pytest.approx(acc)


@pytest.mark.gpu
@cuda
def test_search_with_two_workers_export_and_predict_on_cuda(tmp_path, data_dir):
    """Two worker processes share the device; the winner's CUDA-trained weights export and predict."""
    run_cli("--budget", "8000", "--trials", "4", "--epochs", "1", "--subset", "2000", "--device", "cuda",
            "--workers", "2", "--top-k", "1", "--confirm-seeds", "1", "--confirm-cap", "1", "--data-dir",
            str(data_dir), "--study-name", "g", cwd=tmp_path, check=True)
    study = optuna.load_study(study_name="g", storage=f"sqlite:///{tmp_path}/studies/g.db")
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) >= 1
    out = tmp_path / "exported"
    run_cli("export", "--study", "g", "--best", "--out", str(out), cwd=tmp_path, check=True)
    from PIL import Image

    Image.new("L", (28, 28), 0).save(tmp_path / "blank.png")
    pred = run_cli("predict", "--model", str(out), str(tmp_path / "blank.png"), cwd=tmp_path, check=True)
    assert "blank.png" in pred.stdout
