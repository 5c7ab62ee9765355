"""Your own data: image folders, npz arrays and CIFAR-10 files, made here as fixtures."""

import json
import pickle

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from conftest import require, run_cli
from trainers import sources
from trainers.data import load_data
from trainers.fetch import DataError


def write_folder(root, classes=("a", "b", "c"), per_class=6, size=8, split=True, mode="L", seed=0):
    """PNGs whose brightness encodes the class, so a model can learn them."""
    rng = np.random.default_rng(seed)
    for part in (("train", "test") if split else ("",)):
        for i, c in enumerate(classes):
            d = root / part / c
            d.mkdir(parents=True, exist_ok=True)
            for j in range(per_class):
                base = 40 + 80 * i
                a = np.clip(base + rng.integers(-20, 20, (size, size) + ((3,) if mode == "RGB" else ())), 0, 255)
                Image.fromarray(a.astype(np.uint8), mode).save(d / f"{j:03d}.png")
    return root


def write_cifar(root, n_train=250, n_test=50, seed=0):
    """CIFAR-10 in torchvision's own layout: pickled dicts of uint8 rows, 3x32x32 each."""
    rng = np.random.default_rng(seed)
    folder = root / sources.CIFAR_FOLDER
    folder.mkdir(parents=True)

    def batch(n):
        labels = rng.integers(0, 10, n)
        data = np.zeros((n, 3, 32, 32), np.uint8)
        for k, y in enumerate(labels):  # the class is the colour: learnable in one epoch
            data[k, y % 3] = 120 + 12 * y
            data[k] += rng.integers(0, 30, (3, 32, 32)).astype(np.uint8)
        return {"data": data.reshape(n, -1), "labels": labels.tolist()}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(n_train // 5)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(n_test)))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return root


def test_a_folder_with_train_and_test_reads_once_and_again_when_changed(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "imgs")
    data = load_data(f"folder:{root}", tmp_path / "cache", "cpu")
    assert data.io == {"in_channels": 1, "in_size": 8, "num_classes": 3} and data.classes == ("a", "b", "c")
    assert len(data.train) + len(data.val) == 18 and len(data.test) == 18 and len(data.mean) == 1
    x = data.train.x.double() / 255  # normalization comes from the training split alone
    assert data.mean[0] == pytest.approx(x.mean().item(), abs=1e-6)
    assert len(list((tmp_path / "cache" / "folders").glob("imgs-*.pt"))) == 1

    def no_decoding(*a):
        raise AssertionError("an unchanged folder was decoded again")

    monkeypatch.setattr(sources, "_decode", no_decoding)
    load_data(f"folder:{root}", tmp_path / "cache", "cpu")  # from the cache
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "train" / "a" / "new.png")
    with pytest.raises(AssertionError, match="decoded again"):
        load_data(f"folder:{root}", tmp_path / "cache", "cpu")


def test_a_folder_of_class_folders_gets_a_stated_stratified_test_split(tmp_path):
    root = write_folder(tmp_path / "flat", per_class=10, split=False)
    said = []
    data = load_data(f"folder:{root}", tmp_path / "cache", "cpu", log=said.append)
    assert any("stratified 20% of each class" in s for s in said)
    assert sorted(data.test.y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_mixed_sizes_need_image_size(tmp_path):
    root = write_folder(tmp_path / "m", size=8)
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(root / "train" / "a" / "big.png")
    with pytest.raises(DataError, match="pass --image-size"):
        load_data(f"folder:{root}", tmp_path / "c", "cpu")
    data = load_data(f"folder:{root}", tmp_path / "c", "cpu", image_size=16)
    assert data.io["in_size"] == 16


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts_and_float_pixels(tmp_path, layout):
    rng = np.random.default_rng(0)
    shape = {"NHW": (40, 9, 9), "NHWC": (40, 9, 9, 3), "NCHW": (40, 3, 9, 9)}[layout]
    x = rng.random(shape).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=np.arange(40) % 4, x_test=x[:8], y_test=np.arange(8) % 4)
    data = load_data(f"npz:{path}", tmp_path, "cpu")
    assert data.io == {"in_channels": 1 if layout == "NHW" else 3, "in_size": 9, "num_classes": 4}
    assert data.train.x.dtype == torch.uint8 and len(data.mean) == data.io["in_channels"]


def test_cifar10_in_torchvisions_format(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    data = load_data("cifar10", tmp_path, "cpu")
    assert data.io == {"in_channels": 3, "in_size": 32, "num_classes": 10} and data.classes[0] == "airplane"
    assert len(data.train) + len(data.val) == 250 and len(data.val) == 50  # at most a fifth held out
    monkeypatch.setenv("BUDGETNAS_OFFLINE", "1")
    with pytest.raises(DataError, match="cifar-10-python.tar.gz and unpack it into"):
        load_data("cifar10", tmp_path / "empty", "cpu")


def npz(path, **over):
    x = np.zeros((20, 8, 8), np.uint8)
    arrays = dict(x_train=x, y_train=np.arange(20) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    np.savez(path, **{**arrays, **over})
    return f"npz:{path}"


def one_class(p):
    return f"folder:{write_folder(p / 'f', classes=('only',))}"


def unreadable_image(p):
    root = write_folder(p / "f")
    (root / "train" / "a" / "x.png").write_text("not an image")
    return f"folder:{root}"


def empty_image(p):
    root = write_folder(p / "f")
    (root / "train" / "b" / "e.png").write_bytes(b"")
    return f"folder:{root}"


def class_missing_from_training(p):
    y_train = np.arange(20) % 2  # classes 0 and 1
    return npz(p / "d.npz", x_test=np.zeros((3, 8, 8), np.uint8), y_test=np.array([0, 1, 2]), y_train=y_train)


BAD = [
    ("one class", one_class, "at least two"),
    ("unreadable image", unreadable_image, "not a readable image"),
    ("empty image", empty_image, "is empty"),
    ("labels out of range", lambda p: npz(p / "d.npz", y_train=np.arange(20) % 2 - 1), "labels must be 0..1"),
    ("lengths disagree", lambda p: npz(p / "d.npz", y_train=np.arange(19) % 2), "20 train images but 19 labels"),
    ("NaN", lambda p: npz(p / "d.npz", x_train=np.full((20, 8, 8), np.nan, np.float32)), "NaN"),
    ("a test class the training split lacks", class_missing_from_training,
     "the test split has class(es) the training split lacks"),
]


@pytest.mark.parametrize("case, make, words", BAD, ids=[b[0] for b in BAD])
def test_bad_data_is_refused_in_one_line(tmp_path, case, make, words):
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")) as e:
        load_data(make(tmp_path), tmp_path / "cache", "cpu")
    assert "\n" not in str(e.value)


def test_bad_data_exits_2_before_any_study(tmp_path):
    proc = run_cli("--dataset", class_missing_from_training(tmp_path), "--budget", "3000", "--trials", "2",
                   "--epochs", "1", "--data-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert proc.returncode == 2 and "the test split has class(es) the training split lacks" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    db = list((tmp_path / "studies").glob("*.db")) if (tmp_path / "studies").exists() else []
    assert all(optuna.get_all_study_names(f"sqlite:///{d}") == [] for d in db)


def test_your_own_data_draws_the_mirror_only_when_told_it_keeps_labels(tmp_path):
    data = f"folder:{write_folder(tmp_path / 'parts', per_class=10)}"
    args = ("--dataset", data, "--budget", "3000", "--trials", "4", "--epochs", "1", "--sampler", "random",
            "--top-k", "0", "--no-baselines", "--data-dir", str(tmp_path / "cache"))
    for name, extra in (("plain", ()), ("mirrored", ("--mirror",))):
        run_cli(*args, "--study-name", name, *extra, cwd=tmp_path, check=True)
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/studies/{name}.db")
        trained = [t for t in study.trials if "spec" in t.user_attrs]
        assert trained and all("augment" in t.params for t in trained)  # the whole family, not the digits' warp alone
        assert all(("hflip" in t.params) == bool(extra) for t in trained)
    # the mirror is part of the study's identity: resuming without it is refused, nothing changes
    before = len(study.trials)
    proc = run_cli(*args, "--study-name", "mirrored", "--trials", "6", cwd=tmp_path)
    assert proc.returncode == 2 and "mirror=True (asked False)" in proc.stderr, proc.stderr
    assert len(optuna.load_study(study_name="mirrored", storage=f"sqlite:///{tmp_path}/studies/mirrored.db").trials) == before


def test_fashion_mnist_through_a_folder_gives_the_same_tensors(tmp_path):
    import os

    require(os.path.isdir("/usr/share/datasets/fashion-mnist"), "Debian package dataset-fashion-mnist is not installed")
    from trainers.data import read_source

    raw = read_source("fashion-mnist", tmp_path / "data", None, 0, print)
    root = tmp_path / "fashion"
    for part, x, y in (("train", raw.train_x[:300], raw.train_y[:300]), ("test", raw.test_x[:100], raw.test_y[:100])):
        for k, (img, label) in enumerate(zip(x, y)):
            d = root / part / str(int(label))
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[0].numpy()).save(d / f"{k:05d}.png")
    got = read_source(f"folder:{root}", tmp_path / "data", None, 0, print)
    for x, y, gx, gy in ((raw.train_x[:300], raw.train_y[:300], got.train_x, got.train_y),
                         (raw.test_x[:100], raw.test_y[:100], got.test_x, got.test_y)):
        order = sorted(range(len(y)), key=lambda k: (int(y[k]), k))  # a folder reads class by class
        assert torch.equal(gx, x[order]) and torch.equal(gy, y[order])


def test_a_three_channel_search_exports_a_model_that_predict_and_onnxruntime_run(tmp_path):
    import onnxruntime as ort

    write_cifar(tmp_path / "d")
    run_cli("--dataset", "cifar10", "--data-dir", str(tmp_path / "d"), "--budget", "3000", "--trials", "3",
            "--epochs", "1", "--sampler", "random", "--top-k", "1", "--confirm-seeds", "1", "--confirm-cap", "1",
            "--refit", "none", cwd=tmp_path, check=True, env={"BUDGETNAS_OFFLINE": "1"})
    study = optuna.load_study(study_name="cifar10-b3000", storage=f"sqlite:///{tmp_path}/studies/cifar10-b3000.db")
    trained = [t for t in study.trials if "spec" in t.user_attrs]
    assert all(t.user_attrs["spec"]["in_channels"] == 3 and t.user_attrs["params"] <= 3000 for t in trained)
    # CIFAR-10 draws the whole augmentation family, and the mirror (it keeps an animal's label)
    assert all({"augment", "hflip"} <= set(t.params) for t in trained)
    out = tmp_path / "model"
    run_cli("export", "--study", "cifar10-b3000", "--best", "--out", str(out), cwd=tmp_path, check=True)
    meta = json.loads((out / "spec.json").read_text())
    assert len(meta["normalize"]["mean"]) == 3 and meta["classes"][0] == "airplane"
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(tmp_path / "photo.png")
    pred = run_cli("predict", "--model", str(out), str(tmp_path / "photo.png"), cwd=tmp_path, check=True)
    assert pred.stdout.split(": ")[1].split(" (")[0] in meta["classes"]
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    logits = ort.InferenceSession(str(out / "model.onnx")).run(None, {"image": x})[0]
    assert logits.shape == (2, 10) and np.isfinite(logits).all()
