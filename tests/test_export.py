"""Export: ONNX and TorchScript agree with PyTorch; predict reads PNGs; files attach to the trial."""

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from conftest import run_cli
from space import ArchSpec, build, count_params
from trainers import load_data


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data_dir):
    cwd = tmp_path_factory.mktemp("export")
    run_cli("--budget", "8000", "--trials", "3", "--epochs", "3", "--subset", "5000", "--sampler", "random",
            "--top-k", "1", "--confirm-seeds", "1", "--data-dir", str(data_dir), "--study-name", "ex",
            cwd=cwd, check=True)
    proc = run_cli("export", "--study", "ex", "--best", "--out", str(cwd / "winner"), cwd=cwd, check=True)
    return cwd, cwd / "winner", proc


def reference(folder):
    meta = json.loads((folder / "spec.json").read_text())
    model = build(ArchSpec.from_dict(meta["spec"]))
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model.eval(), meta


def normalized_test(data_dir, meta):
    data = load_data("mnist", data_dir, "cpu")
    x = (data.test.x.float() / 255 - meta["normalize"]["mean"]) / meta["normalize"]["std"]
    return x, data.test.y


def test_files_and_model_card(exported):
    _, folder, proc = exported
    assert {"spec.json", "weights.pt", "model.ts", "model.onnx", "README.md"} <= {p.name for p in folder.iterdir()}
    meta = json.loads((folder / "spec.json").read_text())
    card = (folder / "README.md").read_text()
    assert f"{meta['params']:,} parameters" in card and "## Reproduce" in card and "Receptive field" in card
    assert "test accuracy:" in card and "over 1 seeds" in card
    assert "training them now" not in proc.stdout  # confirmed weights were reused


def test_onnx_matches_pytorch_on_the_test_set(exported, data_dir):
    import onnx
    import onnxruntime as ort

    _, folder, _ = exported
    model, meta = reference(folder)
    x, y = normalized_test(data_dir, meta)
    with torch.no_grad():
        torch_acc = (model(x).argmax(1) == y).float().mean().item() * 100
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"image": x[i:i + 1000].numpy()})[0] for i in range(0, len(x), 1000)])
    onnx_acc = (logits.argmax(1) == y.numpy()).mean() * 100
    assert abs(onnx_acc - torch_acc) <= 0.01
    assert torch_acc > 80
    graph = onnx.load(str(folder / "model.onnx")).graph
    names = dict(model.named_parameters())
    onnx_params = sum(int(np.prod(i.dims)) for i in graph.initializer if i.name in names)
    assert onnx_params == count_params(ArchSpec.from_dict(meta["spec"])) == meta["params"]


def test_torchscript_loads_without_budgetnas(exported, tmp_path):
    _, folder, _ = exported
    model, _ = reference(folder)
    x = torch.randn(4, 1, 28, 28)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        np.save(tmp_path / "want.npy", model(x).numpy())
    code = (
        "import sys\n"
        "for m in ('space', 'search', 'trainers'): sys.modules[m] = None  # importing them fails\n"
        "import numpy as np, torch\n"
        f"m = torch.jit.load({str(folder / 'model.ts')!r})\n"
        f"got = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))).detach().numpy()\n"
        f"assert np.allclose(got, np.load({str(tmp_path / 'want.npy')!r}), atol=1e-5)\n"
        "print('torchscript ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "torchscript ok" in proc.stdout, proc.stderr


def test_predict_on_png_files(exported, data_dir, tmp_path):
    cwd, folder, _ = exported
    model, meta = reference(folder)
    data = load_data("mnist", data_dir, "cpu")
    paths, labels = [], []
    for i in range(30):
        img = Image.fromarray(data.test.x[i, 0].numpy())
        if i % 3 == 1:
            img = img.resize((84, 84), Image.BILINEAR)  # any size
        if i % 3 == 2:
            img = Image.fromarray(255 - np.asarray(img.resize((50, 50)))).convert("RGB")  # dark on light, RGB
        paths.append(tmp_path / f"digit{i}.png")
        img.save(paths[-1])
        labels.append(int(data.test.y[i]))
    proc = run_cli("predict", "--model", str(folder), *map(str, paths), cwd=cwd, check=True)
    got = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.strip().splitlines()]
    with torch.no_grad():
        direct = model((data.test.x[:30].float() / 255 - meta["normalize"]["mean"]) / meta["normalize"]["std"]).argmax(1).tolist()
    assert len(got) == 30
    assert sum(g == d for g, d in zip(got, direct)) >= 27
    assert sum(g == l for g, l in zip(got, labels)) >= 25


def test_exported_files_attached_to_the_trial(exported):
    cwd, folder, _ = exported
    meta = json.loads((folder / "spec.json").read_text())
    study = optuna.load_study(study_name="ex", storage=f"sqlite:///{cwd}/studies/ex.db")
    trial = study.trials[meta["trial"]]
    names = {json.loads(v)["filename"] for k, v in trial.system_attrs.items() if k.startswith("artifacts:")}
    assert {"spec.json", "weights.pt", "model.ts", "model.onnx", "README.md"} <= names


def test_export_trains_weights_when_trial_is_unconfirmed(exported):
    cwd, _, _ = exported
    study = optuna.load_study(study_name="ex", storage=f"sqlite:///{cwd}/studies/ex.db")
    other = next(t for t in study.trials if t.state.name == "COMPLETE" and "confirm" not in t.user_attrs)
    proc = run_cli("export", "--study", "ex", "--trial", str(other.number), "--out", str(cwd / "other"), cwd=cwd, check=True)
    assert "no confirmed weights: training them now" in proc.stdout
    assert (cwd / "other" / "model.onnx").exists()


def test_predict_rejects_a_non_export(tmp_path):
    proc = run_cli("predict", "--model", str(tmp_path), "x.png", cwd=tmp_path)
    assert proc.returncode == 2 and "not an export folder" in proc.stderr
