"""Knowledge distillation: the loss, a student that follows its teacher, the teacher stored once."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import trainers.teacher as teacher_mod
from space import PRESETS, Recipe
from trainers import train
from trainers.distill import Distill, distill_loss
from trainers.teacher import teacher_for

SPEC = PRESETS["seed-004"][0]


def test_the_loss_mixes_labels_and_softened_teacher_outputs_by_hand():
    out = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    y, idx = torch.tensor([0, 1]), torch.tensor([1, 0])  # rows of the teacher's table, out of order
    d = Distill(teacher, weight=0.3, temp=2.0)
    hard = F.cross_entropy(out, y)
    p_t = torch.softmax(teacher[idx] / 2.0, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(out / 2.0, 1))).sum(1).mean()
    assert torch.allclose(distill_loss(out, y, idx, d), 0.7 * hard + 0.3 * 4.0 * kl)
    assert torch.allclose(distill_loss(out, y, idx, None), hard)
    assert torch.allclose(distill_loss(out, y, idx, replace(d, weight=0.0)), hard)
    # a student that already outputs the teacher's logits has nothing left to match
    assert distill_loss(teacher[idx], y, idx, replace(d, weight=1.0)).abs() < 1e-6
    with pytest.raises(ValueError, match="weight"):
        Distill(teacher, weight=1.5)


def test_a_fully_distilled_student_learns_the_teacher_not_the_labels(small_data):
    """A teacher that calls every digit the next one: with all of the loss on the teacher the
    student learns that mapping; with none, the labels."""
    tr = small_data.train
    shifted = (tr.y + 1) % 10
    liar = Distill(F.one_hot(shifted, 10).float() * 8.0, weight=1.0, temp=1.0)
    recipe = Recipe(epochs=4, batch_size=64, lr=0.05, rotate=0.0)
    norm = (small_data.mean, small_data.std)
    # 4 epochs on 2,000 images: each student agrees with what it was taught on 82-96% of them over 5
    # seeds x 1-2 threads x plain / AVX2 kernels, and the liar's with the labels on at most ~1%:
    # half is far from both, and from chance (10%)
    for d, want in ((liar, shifted), (None, tr.y)):
        model = train(SPEC, tr, recipe, evals={}, norm=norm, distill=d).model.eval()
        with torch.no_grad():
            pred = model((tr.x.float() / 255 - norm[0][0]) / norm[1][0]).argmax(1)
        assert (pred == want).float().mean() > 0.5
        if d is liar:
            assert (pred == tr.y).float().mean() < 0.1


def test_logits_must_cover_the_split(small_data):
    with pytest.raises(ValueError, match="cover 5 images"):
        train(SPEC, small_data.train, Recipe(epochs=1), evals={}, norm=(small_data.mean, small_data.std),
              distill=Distill(torch.zeros(5, 10)))


def test_the_teacher_is_trained_once_per_data_set_and_read_back(small_data, tmp_path, monkeypatch):
    monkeypatch.setattr(teacher_mod, "TEACHER_RECIPE", Recipe(epochs=3, batch_size=32, lr=0.05))
    logs = []
    first = teacher_for(small_data, tmp_path, log=logs.append)
    assert first.path.exists() and "training" in logs[0] and "epoch 3/3" in logs[-2]
    assert first.train_logits.shape == (len(small_data.train), 10)
    assert first.val_logits.shape == (len(small_data.val), 10)
    agree = (first.val_logits.argmax(1) == small_data.val.y).float().mean().item() * 100
    assert abs(agree - first.val_acc) < 0.01 and first.val_acc > 50 and first.seconds > 0
    again = teacher_for(small_data, tmp_path, log=logs.append)
    assert torch.equal(again.train_logits, first.train_logits) and "training" not in logs[-1]
    full = again.distill(0.5, full=True)
    assert len(full.logits) == len(small_data.full_train()) and full.weight == 0.5
    other = replace(small_data, train=replace(small_data.train, y=small_data.train.y.flip(0)))
    assert teacher_mod.fingerprint(other) != teacher_mod.fingerprint(small_data)
